"""Accounts in a Cognito user pool, behind the same :class:`AuthProvider` interface.

Cognito holds the passwords and mints the tokens; the gateway relays the calls and
verifies the access tokens it hands out with the shared verifier (the pool's JWKS).
"""

from __future__ import annotations

import uuid

import structlog

from videoforge.gateway.accounts.cognito_client import CognitoClient, CognitoError, CognitoTokens
from videoforge.gateway.accounts.policy import (
    check_password_policy,
    invalid_credentials,
    normalise_email,
)
from videoforge.gateway.accounts.schemas import (
    AuthResponse,
    ConfirmRequest,
    LoginRequest,
    PasswordChangeRequest,
    SignupRequest,
    UserRead,
)
from videoforge.infra.auth.principal import Principal
from videoforge.infra.auth.verifier import TokenVerifier
from videoforge.infra.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
)

log = structlog.get_logger("videoforge.gateway.cognito")


#: Sign-up errors that mean "this address already has an account".
_ACCOUNT_EXISTS = frozenset({"UsernameExistsException", "AliasExistsException"})


def _invalid_code() -> BadRequest:
    return BadRequest("That confirmation code is wrong or has expired.", code="invalid_code")


def map_cognito_error(exc: CognitoError) -> AppError:
    """Cognito's error codes as our stable codes (never a 500 for a user mistake)."""
    code = exc.code
    if code == "UsernameExistsException":
        return Conflict("An account with this e-mail address already exists.", code="email_taken")
    if code == "InvalidPasswordException":
        return UnprocessableEntity(exc.message or "The password is too weak.", code="weak_password")
    if code in {"NotAuthorizedException", "UserNotFoundException"}:
        return invalid_credentials()
    if code == "UserNotConfirmedException":
        return Forbidden(
            "Confirm your e-mail address with the code we sent first.",
            code="confirmation_required",
        )
    if code in {"CodeMismatchException", "ExpiredCodeException"}:
        return _invalid_code()
    if code in {
        "TooManyRequestsException",
        "LimitExceededException",
        "TooManyFailedAttemptsException",
    }:
        return TooManyRequests("Too many attempts; try again later.", retry_after=60)
    if code == "ChallengeRequired":
        return Forbidden(
            f"This account needs a step this site does not support ({exc.message}).",
            code="challenge_required",
        )
    if code in {"InvalidParameterException"}:
        return UnprocessableEntity(exc.message or "Invalid request.", code="validation_error")
    log.error("cognito_error", code=code, message=exc.message)
    return ServiceUnavailable("The identity provider is unavailable.", code="idp_unavailable")


class CognitoAccounts:
    """:class:`AuthProvider` backed by a Cognito user pool."""

    def __init__(self, client: CognitoClient, verifier: TokenVerifier) -> None:
        self.client = client
        self.verifier = verifier

    async def _response(self, tokens: CognitoTokens, *, email: str | None = None) -> AuthResponse:
        principal = await self.verifier.verify(tokens.access_token)
        return AuthResponse(
            user=user_read(principal, email=email),
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
        )

    async def signup(self, data: SignupRequest, *, base_url: str = "") -> AuthResponse:
        """Register in the pool; the user confirms with the e-mailed code, then logs in.

        A stranger must not learn which addresses are registered: for an address that
        already has an account the answer is the one a new sign-up gets (201,
        ``confirmation_required``, a random id in place of the account's), after the same
        single call to Cognito. Nothing changes for the existing account, and no code it
        could confirm is sent. (A pool that confirms sign-ups itself, without a code,
        logs new users in at once; there the two answers necessarily differ.)
        """
        email = normalise_email(data.email)
        display_name = (data.display_name or "").strip() or None
        # Before Cognito's own policy: it knows nothing of leaked or common passwords.
        await check_password_policy(data.password, email=email, display_name=display_name)
        try:
            sub, confirmed = await self.client.sign_up(
                email, data.password, display_name=display_name
            )
        except CognitoError as exc:
            if exc.code not in _ACCOUNT_EXISTS:
                raise map_cognito_error(exc) from None
            log.info("signup_address_taken")
            sub, confirmed = str(uuid.uuid4()), False
        if confirmed:
            return await self.login(LoginRequest(email=email, password=data.password))
        return AuthResponse(
            user=UserRead(id=sub, email=email, display_name=display_name),
            confirmation_required=True,
            confirmation="code",
        )

    async def confirm(self, data: ConfirmRequest, *, base_url: str = "") -> None:
        """Confirm a sign-up with the code Cognito sent.

        An unknown address and an account confirmed already get the answer of a wrong
        code, so that confirming does not tell which addresses are registered either."""
        if data.email is None or data.code is None:
            raise _invalid_code()  # a local account's link token means nothing here
        try:
            await self.client.confirm_sign_up(normalise_email(data.email), data.code.strip())
        except CognitoError as exc:
            if exc.code in {"UserNotFoundException", "NotAuthorizedException"}:
                raise _invalid_code() from None
            raise map_cognito_error(exc) from None

    async def login(self, data: LoginRequest) -> AuthResponse:
        """USER_PASSWORD_AUTH against the pool."""
        try:
            email = normalise_email(data.email)
        except UnprocessableEntity:
            raise invalid_credentials() from None
        try:
            tokens = await self.client.password_auth(email, data.password)
        except CognitoError as exc:
            raise map_cognito_error(exc) from None
        return await self._response(tokens, email=email)

    async def refresh(self, refresh_token: str) -> AuthResponse:
        """REFRESH_TOKEN_AUTH; Cognito keeps the same refresh token."""
        try:
            tokens = await self.client.refresh(refresh_token)
        except CognitoError as exc:
            if exc.code == "NotAuthorizedException":
                raise Unauthorized(
                    "This session has ended; log in again.", code="token_revoked"
                ) from None
            raise map_cognito_error(exc) from None
        return await self._response(tokens)

    async def logout(self, refresh_token: str | None, access_token: str | None) -> None:
        """Sign out: with an access token, every session of the user (Cognito's global
        sign-out); with only a refresh token, revoke that token."""
        try:
            if access_token:
                await self.client.global_sign_out(access_token)
            elif refresh_token:
                await self.client.revoke_token(refresh_token)
        except CognitoError as exc:
            if exc.code != "NotAuthorizedException":  # already signed out: nothing to do
                raise map_cognito_error(exc) from None

    async def change_password(
        self, principal: Principal, access_token: str, data: PasswordChangeRequest
    ) -> AuthResponse:
        """Change the password, sign out every session, and log in again with it."""
        try:
            attributes = await self.client.get_user(access_token)
        except CognitoError as exc:
            if exc.code == "NotAuthorizedException":
                raise _session_ended() from None
            raise map_cognito_error(exc) from None
        email = attributes.get("email") or principal.username or ""
        await check_password_policy(
            data.new_password, email=email or None, display_name=attributes.get("name")
        )
        try:
            await self.client.change_password(
                access_token, data.current_password, data.new_password
            )
            await self.client.global_sign_out(access_token)
        except CognitoError as exc:
            if exc.code == "NotAuthorizedException":
                raise Unauthorized(
                    "The current password is wrong.", code="invalid_credentials"
                ) from None
            raise map_cognito_error(exc) from None
        return await self.login(LoginRequest(email=email, password=data.new_password))

    async def me(self, principal: Principal, access_token: str) -> UserRead:
        """The caller, with e-mail and name from the pool."""
        try:
            attributes = await self.client.get_user(access_token)
        except CognitoError as exc:
            if exc.code == "NotAuthorizedException":
                raise Unauthorized(
                    "This session has ended; log in again.", code="token_revoked"
                ) from None
            raise map_cognito_error(exc) from None
        return user_read(
            principal, email=attributes.get("email"), display_name=attributes.get("name")
        )


def _session_ended() -> Unauthorized:
    return Unauthorized("This session has ended; log in again.", code="token_revoked")


def user_read(
    principal: Principal, *, email: str | None = None, display_name: str | None = None
) -> UserRead:
    return UserRead(
        id=principal.user_id,
        email=email,
        display_name=display_name,
        groups=sorted(principal.groups),
        is_admin=principal.is_admin,
    )
