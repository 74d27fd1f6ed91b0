"""``/api/auth/*`` account settings: password reset, confirmation mail, profile, deletion.

The same endpoints for local accounts and Cognito (the provider's
:class:`~videoforge.gateway.accounts.recovery.AccountRecovery`). Every endpoint that mails an
address a stranger could name is rate-limited per client address and per address (or
account), and answers the same whatever the address.
"""

from __future__ import annotations

import hashlib

import structlog
from fastapi import APIRouter, Depends, Request, Response, status

from videoforge.gateway.accounts.policy import normalise_email
from videoforge.gateway.accounts.recovery import AccountRecovery
from videoforge.gateway.accounts.schemas import (
    AcceptedResponse,
    AccountDeleteRequest,
    EmailRequest,
    MeUpdate,
    OkResponse,
    PasswordResetRequest,
    UserRead,
)
from videoforge.gateway.deps import GatewayState, gateway_state, request_id
from videoforge.gateway.gallery.client import UpstreamUnavailable
from videoforge.gateway.ratelimit import Action, client_ip
from videoforge.infra.auth.principal import Principal, bearer_token, require_principal
from videoforge.infra.db import session_scope
from videoforge.infra.errors import AppError, ServiceUnavailable, UnprocessableEntity
from videoforge.infra.forwarded import public_base_url
from videoforge.infra.openapi import error_responses
from videoforge.jobs.service import remove_user_jobs

log = structlog.get_logger("videoforge.gateway.account_api")

#: The common refusals, and: 410 (a used or expired link), 502 (the gallery, asked for
#: storage figures or to delete videos, did not answer).
router = APIRouter(
    prefix="/api/auth",
    tags=["auth"],
    responses={**error_responses(), **error_responses(410, 502)},
)

_CHECK_MAIL = (
    "If an account uses this address, we have sent it a mail. Check your inbox (and the "
    "spam folder)."
)


def _subject(raw: str) -> str:
    try:
        return normalise_email(raw)
    except UnprocessableEntity:
        return raw.strip().lower()


def _recovery(gw: GatewayState) -> AccountRecovery:
    if gw.recovery is None:
        raise ServiceUnavailable("Account recovery is not available.", code="unavailable")
    return gw.recovery


def _base_url(request: Request, gw: GatewayState) -> str:
    return public_base_url(request, gw.settings.public_url)


def _token(request: Request) -> str:
    token = bearer_token(request)
    assert token is not None  # require_principal saw it
    return token


async def with_usage(gw: GatewayState, request: Request, user: UserRead) -> UserRead:
    """``user`` with its storage use and quota, asked of the gallery as the caller.
    A gallery that does not answer leaves them null rather than failing ``/me``."""
    if gw.gallery is None:
        return user
    try:
        usage = await gw.gallery.usage(token=_token(request), request_id=request_id(request))
    except AppError as exc:
        log.warning("storage_usage_unavailable", code=exc.code)
        return user
    return user.model_copy(
        update={"storage_used_bytes": usage.used_bytes, "storage_quota_bytes": usage.quota_bytes}
    )


@router.post(
    "/password/forgot",
    response_model=AcceptedResponse,
    status_code=status.HTTP_202_ACCEPTED,
)
async def forgot_password(
    body: EmailRequest, request: Request, gw: GatewayState = Depends(gateway_state)
) -> AcceptedResponse:
    """Mail a password-reset link (local accounts) or code (Cognito) to the address, if
    it has an account. The answer is the same 202 for every address."""
    await gw.limiter.check(Action.PASSWORD_FORGOT, ip=client_ip(request), user=_subject(body.email))
    await _recovery(gw).forgot_password(body.email, base_url=_base_url(request, gw))
    return AcceptedResponse(message=_CHECK_MAIL)


@router.post("/password/reset", response_model=OkResponse)
async def reset_password(
    body: PasswordResetRequest, request: Request, gw: GatewayState = Depends(gateway_state)
) -> OkResponse:
    """Set a new password: local accounts send the link's ``token``, Cognito the
    ``email`` and the mailed ``code``. Every session of the account ends. A used or
    expired link is 410 ``token_used`` / ``token_expired``; an unknown one 400
    ``token_invalid``; a wrong Cognito code 400 ``invalid_code``."""
    subject = (
        hashlib.sha256(body.token.encode()).hexdigest()
        if body.token
        else _subject(body.email or "")
    )
    await gw.limiter.check(Action.LOGIN, ip=client_ip(request), user=subject)
    await _recovery(gw).reset_password(body, base_url=_base_url(request, gw))
    return OkResponse()


@router.post(
    "/confirm/resend",
    response_model=AcceptedResponse,
    status_code=status.HTTP_202_ACCEPTED,
)
async def resend_confirmation(
    body: EmailRequest, request: Request, gw: GatewayState = Depends(gateway_state)
) -> AcceptedResponse:
    """Mail a new confirmation link (or Cognito code) to an account that is not
    confirmed yet. The same 202 for every address."""
    await gw.limiter.check(Action.CONFIRM_RESEND, ip=client_ip(request), user=_subject(body.email))
    await _recovery(gw).resend_confirmation(body.email, base_url=_base_url(request, gw))
    return AcceptedResponse(message=_CHECK_MAIL)


@router.patch("/me", response_model=UserRead)
async def update_me(
    body: MeUpdate,
    request: Request,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> UserRead:
    """Change the display name (at once; new access tokens carry it) and/or the e-mail
    address: a new address needs ``current_password`` and is mailed a confirmation link;
    it replaces the old one (which is told) only once the link is used. Until then
    ``pending_email`` shows it."""
    if "email" in body.model_fields_set and body.email is not None:
        ip = client_ip(request)
        await gw.limiter.check(Action.EMAIL_CHANGE, ip=ip, user=principal.user_id)
        await gw.limiter.check(Action.EMAIL_CHANGE, ip=ip, user=_subject(body.email))
    user = await _recovery(gw).update_me(
        principal, _token(request), body, base_url=_base_url(request, gw)
    )
    return await with_usage(gw, request, user)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_me(
    body: AccountDeleteRequest,
    request: Request,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> Response:
    """Delete the account and everything of it, confirmed with the current password:
    the videos and their stored objects (the gallery, as the caller), the jobs, then the
    account itself with its sessions. If the gallery cannot be reached nothing is
    deleted (502) and the request can simply be repeated."""
    await gw.limiter.check(Action.LOGIN, ip=client_ip(request), user=principal.user_id)
    recovery = _recovery(gw)
    token = _token(request)
    await recovery.check_password(principal, token, body.password)
    if gw.gallery is None:
        raise UpstreamUnavailable("The gallery is not configured; nothing was deleted.")
    videos = await gw.gallery.delete_my_videos(token=token, request_id=request_id(request))
    async with session_scope(gw.infra.sessions) as session:
        jobs = await remove_user_jobs(session, principal.user_id)
    await recovery.delete_account(principal, token)
    log.info(
        "account_and_data_deleted",
        user_id=principal.user_id,
        videos=videos,
        jobs_deleted=jobs.deleted,
        jobs_stopping=jobs.stopping,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
