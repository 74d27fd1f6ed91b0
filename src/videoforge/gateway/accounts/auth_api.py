"""``/api/auth/*``: sign-up, confirm, log-in, refresh, log-out, password change, me.

The same endpoints and response shapes for local accounts and Cognito; the provider is
chosen at start-up (:class:`videoforge.gateway.accounts.provider.AuthProvider`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status

from videoforge.gateway.accounts.account_api import with_usage
from videoforge.gateway.accounts.policy import normalise_email
from videoforge.gateway.accounts.schemas import (
    AuthResponse,
    ConfirmRequest,
    LoginRequest,
    LogoutRequest,
    OkResponse,
    PasswordChangeRequest,
    RefreshRequest,
    SignupRequest,
    UserRead,
)
from videoforge.gateway.deps import GatewayState, gateway_state
from videoforge.gateway.ratelimit import Action, client_ip
from videoforge.infra.auth.principal import Principal, bearer_token, require_principal
from videoforge.infra.errors import NotFound, UnprocessableEntity
from videoforge.infra.forwarded import public_base_url
from videoforge.infra.openapi import error_responses

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=error_responses())
well_known = APIRouter(tags=["auth"])


def _email_subject(raw: str) -> str:
    try:
        return normalise_email(raw)
    except UnprocessableEntity:
        return raw.strip().lower()


@router.post("/signup", response_model=AuthResponse, status_code=status.HTTP_201_CREATED)
async def signup(
    body: SignupRequest, request: Request, gw: GatewayState = Depends(gateway_state)
) -> AuthResponse:
    """Create an account. Local accounts are logged in at once, unless e-mail
    confirmation is on (``EMAIL_CONFIRMATION``): then, as with Cognito, the answer says
    ``confirmation_required`` until the mailed link (or code) is sent to ``/confirm``,
    and an address that is registered already gets exactly the same answer."""
    await gw.limiter.check(Action.SIGNUP, ip=client_ip(request), user=_email_subject(body.email))
    return await gw.accounts.signup(body, base_url=public_base_url(request, gw.settings.public_url))


@router.post("/confirm", response_model=OkResponse, responses=error_responses(410))
async def confirm(
    body: ConfirmRequest, request: Request, gw: GatewayState = Depends(gateway_state)
) -> OkResponse:
    """Confirm an address: Cognito with ``email`` and the mailed ``code``, local
    accounts with the mailed link's ``token`` (a sign-up, or an address change). A used
    or expired link is 410 ``token_used`` / ``token_expired``, an unknown one 400
    ``token_invalid``."""
    subject = _email_subject(body.email) if body.email else (body.token or "")[:64]
    await gw.limiter.check(Action.LOGIN, ip=client_ip(request), user=subject)
    await gw.accounts.confirm(body, base_url=public_base_url(request, gw.settings.public_url))
    return OkResponse()


@router.post("/login", response_model=AuthResponse)
async def login(
    body: LoginRequest, request: Request, gw: GatewayState = Depends(gateway_state)
) -> AuthResponse:
    """Log in with e-mail and password; returns an access and a refresh token."""
    await gw.limiter.check(Action.LOGIN, ip=client_ip(request), user=_email_subject(body.email))
    return await gw.accounts.login(body)


@router.post("/refresh", response_model=AuthResponse)
async def refresh(body: RefreshRequest, gw: GatewayState = Depends(gateway_state)) -> AuthResponse:
    """Trade a refresh token for a new access token (local refresh tokens are single use:
    the answer carries the next one)."""
    return await gw.accounts.refresh(body.refresh_token)


@router.post("/logout", response_model=OkResponse)
async def logout(
    request: Request,
    body: LogoutRequest | None = None,
    gw: GatewayState = Depends(gateway_state),
) -> OkResponse:
    """End the session: the refresh token stops working. Works with an expired access token."""
    access_token: str | None = None
    if request.headers.get("authorization"):
        access_token = bearer_token(request)
    await gw.accounts.logout(body.refresh_token if body else None, access_token)
    return OkResponse()


@router.post("/password", response_model=AuthResponse)
async def change_password(
    body: PasswordChangeRequest,
    request: Request,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> AuthResponse:
    """Change the password. Every refresh token is revoked; the answer has fresh tokens."""
    await gw.limiter.check(Action.LOGIN, ip=client_ip(request), user=principal.user_id)
    token = bearer_token(request)
    assert token is not None  # require_principal saw it
    return await gw.accounts.change_password(principal, token, body)


@router.get("/me", response_model=UserRead)
async def me(
    request: Request,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> UserRead:
    """The signed-in user, with the storage their videos use and their quota."""
    token = bearer_token(request)
    assert token is not None
    return await with_usage(gw, request, await gw.accounts.me(principal, token))


@well_known.get("/.well-known/jwks.json")
async def jwks(response: Response, gw: GatewayState = Depends(gateway_state)) -> dict[str, Any]:
    """The public keys local access tokens are signed with (for other services' verifiers)."""
    if gw.issuer is None:
        raise NotFound("This gateway does not issue tokens (Cognito is in use).", code="no_jwks")
    # Verifiers cache it themselves and refetch on an unknown kid; a short shared cache
    # only spares the gateway when many of them start at once.
    response.headers["Cache-Control"] = "public, max-age=300"
    return gw.issuer.jwks()
