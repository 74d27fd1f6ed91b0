"""The gateway's token issuer for local accounts: ES256 access and refresh tokens, and
the public JWKS (``/.well-known/jwks.json``) other processes verify them with.

The signing key is the one :func:`videoforge.infra.auth.keys.local_signing_key` reads or
makes, so what is minted here is exactly what the shared verifier
(:mod:`videoforge.infra.auth.verifier`) accepts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from videoforge.infra.auth.keys import LOCAL_ALGORITHM, local_signing_key, public_jwk
from videoforge.infra.auth.principal import clean_display_name, invalid_token
from videoforge.infra.auth.verifier import (
    LOCAL_GROUPS_CLAIM,
    NAME_CLAIM,
    TokenUse,
    decode_token,
)
from videoforge.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey


@dataclass(frozen=True)
class RefreshClaims:
    """What a verified local refresh token says (the accounts service checks ``jti``)."""

    user_id: str
    jti: str
    expires_at: float


class TokenIssuer:
    """Mints local access and refresh tokens (ES256) and publishes the public JWKS."""

    def __init__(
        self,
        private_key: EllipticCurvePrivateKey,
        *,
        issuer: str,
        audience: str,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self._jwk = public_jwk(self.public_key)
        self.kid = self._jwk["kid"]
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    @classmethod
    def from_settings(
        cls, settings: Settings, *, key: EllipticCurvePrivateKey | None = None
    ) -> TokenIssuer:
        """An issuer signing with ``key`` (the one ``Infra.signing_key`` holds), or with the
        configured key, or the data dir's, generated on first use."""
        return cls(
            key or local_signing_key(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        )

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self._private_key,
            algorithm=LOCAL_ALGORITHM,
            headers={"kid": self.kid, "typ": "JWT"},
        )

    def _base_claims(self, user_id: str, token_use: str, ttl: int, jti: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": jti,
            "token_use": token_use,
        }

    def issue_access(
        self,
        user_id: str,
        *,
        username: str | None = None,
        groups: Iterable[str] = (),
        display_name: str | None = None,
    ) -> str:
        """A short-lived access token for ``user_id`` with its groups and display name.

        ``display_name`` goes into the ``name`` claim, which services may show to other
        users; a value that looks like an e-mail address is left out.
        """
        claims = self._base_claims(user_id, TokenUse.ACCESS, self.access_ttl, uuid.uuid4().hex)
        claims[LOCAL_GROUPS_CLAIM] = sorted(set(groups))
        if username is not None:
            claims["username"] = username
        name = clean_display_name(display_name)
        if name is not None:
            claims[NAME_CLAIM] = name
        return self._encode(claims)

    def issue_refresh(self, user_id: str, *, jti: str | None = None, ttl: int | None = None) -> str:
        """A long-lived refresh token; store its ``jti`` to be able to revoke it."""
        claims = self._base_claims(
            user_id, TokenUse.REFRESH, ttl or self.refresh_ttl, jti or uuid.uuid4().hex
        )
        return self._encode(claims)

    def verify_refresh(self, token: str) -> RefreshClaims:
        """Check a refresh token's signature and claims (revocation is the caller's job)."""
        claims = decode_token(
            token,
            key=self.public_key,
            algorithm=LOCAL_ALGORITHM,
            issuer=self.issuer,
            audience=self.audience,
            expected_use=TokenUse.REFRESH,
            expected_kid=self.kid,
        )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise invalid_token("The refresh token is invalid.")
        return RefreshClaims(user_id=str(claims["sub"]), jti=jti, expires_at=float(claims["exp"]))

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document (``/.well-known/jwks.json``)."""
        return {"keys": [dict(self._jwk)]}
