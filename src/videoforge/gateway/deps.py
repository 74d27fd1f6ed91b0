"""What the gateway's routes share: its state (built once per app) and small dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from fastapi import Request

from videoforge.gateway.ratelimit import RateLimiter, RateLimits
from videoforge.infra.http import get_request_id
from videoforge.infra.runtime import Infra
from videoforge.settings import Settings

if TYPE_CHECKING:
    from videoforge.gateway.accounts.provider import AuthProvider
    from videoforge.gateway.accounts.recovery import AccountMail, AccountRecovery
    from videoforge.gateway.accounts.tokens import TokenIssuer
    from videoforge.gateway.gallery.client import GalleryClient
    from videoforge.gateway.gallery.forwarding import GalleryProxy


@dataclass(frozen=True)
class GatewayOptions:
    """Knobs an embedding program or a test may turn (the rest is in :class:`Settings`)."""

    #: None: the defaults overridden by ``RATE_LIMITS`` (see ``RateLimits.from_settings``).
    rate_limits: RateLimits | None = None
    password_hasher: PasswordHasher | None = None
    #: How often the SSE stream re-reads the job row (seconds).
    events_poll_interval: float = 0.75
    #: A comment line this often keeps proxies from closing an idle stream (seconds).
    events_heartbeat_interval: float = 15.0
    #: The longest one SSE connection stays open; EventSource reconnects by itself.
    events_max_duration: float = 3600.0
    #: Directory of the web client; None for the packaged ``gateway/web``.
    web_dir: str | None = None
    #: hls.js to serve at ``/vendor/hls.min.js``; None to look in ``node_modules``.
    hls_js_path: str | None = None


@dataclass
class GatewayState:
    settings: Settings
    infra: Infra
    accounts: AuthProvider
    limiter: RateLimiter
    options: GatewayOptions
    #: The local token issuer (None with Cognito).
    issuer: TokenIssuer | None = None
    gallery: GalleryClient | None = None
    proxy: GalleryProxy | None = None
    #: Password reset, confirmation mail, profile edits, deletion (local or Cognito).
    recovery: AccountRecovery | None = None
    #: Mail (and the work that leads to it) done after the answer.
    mail: AccountMail | None = None


async def gateway_state(request: Request) -> GatewayState:
    """The gateway's state, put on ``app.state.gateway`` by the app factory or lifespan
    (``async`` so that FastAPI does not hop to its thread pool for it on every request)."""
    state: GatewayState = request.app.state.gateway
    return state


def request_id(request: Request) -> str | None:
    """The request id to pass on to the gallery (set by the shared middleware)."""
    value = get_request_id() or getattr(request.state, "request_id", None)
    return str(value) if value else None
