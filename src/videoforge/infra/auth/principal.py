"""Who is calling, and the FastAPI dependencies that routes declare to learn it.

A :class:`Principal` only ever comes out of the verifier (:mod:`.verifier`), which the
service's start-up puts on ``app.state.infra``. A missing token is anonymous; a bad one
is a 401, never anonymous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from videoforge.infra.errors import Forbidden, Unauthorized

#: Display names longer than this are cut (the gallery stores up to 100 characters).
DISPLAY_NAME_MAX = 100
#: Something shaped like an e-mail address: never shown to others as a name.
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def invalid_token(message: str = "The access token is invalid.") -> Unauthorized:
    """401 ``token_invalid``: a token that is malformed, forged or not for us."""
    return Unauthorized(
        message,
        code="token_invalid",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def expired_token() -> Unauthorized:
    """401 ``token_expired``: a good token whose time is up (the client refreshes)."""
    return Unauthorized(
        "The token has expired; refresh it or log in again.",
        code="token_expired",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    user_id: str
    #: The login name; for local accounts the e-mail address, so never show it to others.
    username: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    #: A name fit to show other users (``name`` claim); None when the token has none.
    display_name: str | None = None

    @property
    def public_name(self) -> str:
        """The display name, or a neutral stand-in derived from the id (never the e-mail)."""
        return self.display_name or neutral_name(self.user_id)


def neutral_name(user_id: str) -> str:
    """The name shown for a user without a display name: ``user-`` and 6 id characters."""
    return f"user-{user_id.replace('-', '')[:6]}"


def clean_display_name(value: Any) -> str | None:
    """A claim value usable as a public display name, or None.

    Blank values and anything shaped like an e-mail address are refused: a pool's
    ``preferred_username`` (or a careless sign-up name) may be the address itself, and
    e-mail addresses must never reach other users.
    """
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())[:DISPLAY_NAME_MAX].strip()
    if not name or _EMAIL_LIKE.fullmatch(name):
        return None
    return name


# ------------------------------------------------------------------ FastAPI hooks
def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header; None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when anonymous. A bad token is a 401, never anonymous."""
    token = bearer_token(request)
    if token is None:
        return None
    # The service's TokenVerifier (infra.runtime.Infra.verifier).
    principal: Principal = await request.app.state.infra.verifier.verify(token)
    return principal


async def require_principal(request: Request) -> Principal:
    """The caller; 401 ``auth_required`` when no token was sent."""
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized(
            "Log in to do this.",
            code="auth_required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def require_admin(request: Request) -> Principal:
    """The caller, who must be in the admin group (403 otherwise)."""
    principal = await require_principal(request)
    if not principal.is_admin:
        raise Forbidden("Only administrators can do this.", code="admin_required")
    return principal
