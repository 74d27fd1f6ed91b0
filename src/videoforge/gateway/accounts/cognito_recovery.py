"""Password reset, confirmation mail, profile edits and deletion for Cognito accounts.

The :class:`~videoforge.gateway.accounts.recovery.AccountRecovery` of a Cognito user pool:
ForgotPassword / ConfirmForgotPassword, ResendConfirmationCode, UpdateUserAttributes and
DeleteUser. Cognito mails the codes itself; the gateway only relays.

Like the local flows, the calls that mail an address run after the answer, and their
failures (an unknown address included) are logged, never answered: the 202 says nothing
about whether the address has an account.
"""

from __future__ import annotations

import structlog

from videoforge.gateway.accounts.cognito import CognitoAccounts, map_cognito_error, user_read
from videoforge.gateway.accounts.cognito_client import CognitoError
from videoforge.gateway.accounts.policy import check_password_policy, normalise_email
from videoforge.gateway.accounts.recovery import AccountMail
from videoforge.gateway.accounts.schemas import MeUpdate, PasswordResetRequest, UserRead
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import BadRequest, Unauthorized, UnprocessableEntity

log = structlog.get_logger("videoforge.gateway.cognito_recovery")


def _invalid_code() -> BadRequest:
    return BadRequest("That code is wrong or has expired.", code="invalid_code")


def _session_ended() -> Unauthorized:
    return Unauthorized("This session has ended; log in again.", code="token_revoked")


class CognitoRecovery:
    """See the module docstring."""

    def __init__(self, accounts: CognitoAccounts, background: AccountMail) -> None:
        self.accounts = accounts
        self.client = accounts.client
        # Only its background runner is used: Cognito sends its own mail.
        self.background = background

    async def _quietly(self, kind: str, operation: str, **kwargs: object) -> None:
        try:
            await self.client._call(operation, ClientId=self.client.client_id, **kwargs)
        except CognitoError as exc:
            log.info("cognito_mail_request_refused", kind=kind, code=exc.code)

    async def forgot_password(self, email: str, *, base_url: str) -> None:
        """Cognito mails a code; the reset then takes ``email``, ``code``, ``password``."""
        try:
            address = normalise_email(email)
        except UnprocessableEntity:
            return

        async def work() -> None:
            await self._quietly("password_forgot", "forgot_password", Username=address)

        self.background.later("password_forgot", work)

    async def reset_password(self, data: PasswordResetRequest, *, base_url: str) -> None:
        if data.email is None or data.code is None:
            raise BadRequest(
                "With this site's accounts, reset with the e-mailed code and your address.",
                code="invalid_code",
            )
        email = normalise_email(data.email)
        await check_password_policy(data.password, email=email)
        try:
            await self.client._call(
                "confirm_forgot_password",
                ClientId=self.client.client_id,
                Username=email,
                ConfirmationCode=data.code.strip(),
                Password=data.password,
            )
        except CognitoError as exc:
            if exc.code in {
                "CodeMismatchException",
                "ExpiredCodeException",
                "UserNotFoundException",
                "NotAuthorizedException",
                "ResourceNotFoundException",
            }:
                raise _invalid_code() from None
            raise map_cognito_error(exc) from None

    async def resend_confirmation(self, email: str, *, base_url: str) -> None:
        try:
            address = normalise_email(email)
        except UnprocessableEntity:
            return

        async def work() -> None:
            await self._quietly("confirm_resend", "resend_confirmation_code", Username=address)

        self.background.later("confirm_resend", work)

    async def update_me(
        self, principal: Principal, access_token: str, data: MeUpdate, *, base_url: str
    ) -> UserRead:
        """The display name (the pool's ``name``). Address changes are refused: a pool
        may switch the address before it is verified, which would let a typo take the
        account's log-in away."""
        if "email" in data.model_fields_set and data.email is not None:
            raise UnprocessableEntity(
                "E-mail addresses cannot be changed here with this site's accounts.",
                code="email_change_unsupported",
            )
        try:
            if "display_name" in data.model_fields_set:
                name = (data.display_name or "").strip()
                if name:
                    await self.client._call(
                        "update_user_attributes",
                        AccessToken=access_token,
                        UserAttributes=[{"Name": "name", "Value": name}],
                    )
                else:
                    await self.client._call(
                        "delete_user_attributes",
                        AccessToken=access_token,
                        UserAttributeNames=["name"],
                    )
            attributes = await self.client.get_user(access_token)
        except CognitoError as exc:
            if exc.code == "NotAuthorizedException":
                raise _session_ended() from None
            raise map_cognito_error(exc) from None
        return user_read(
            principal, email=attributes.get("email"), display_name=attributes.get("name")
        )

    async def check_password(self, principal: Principal, access_token: str, password: str) -> None:
        try:
            attributes = await self.client.get_user(access_token)
            await self.client.password_auth(attributes.get("email") or "", password)
        except CognitoError as exc:
            if exc.code in {"NotAuthorizedException", "UserNotFoundException"}:
                raise Unauthorized("The password is wrong.", code="invalid_credentials") from None
            raise map_cognito_error(exc) from None

    async def delete_account(self, principal: Principal, access_token: str) -> None:
        try:
            await self.client._call("delete_user", AccessToken=access_token)
        except CognitoError as exc:
            if exc.code == "NotAuthorizedException":
                raise _session_ended() from None
            raise map_cognito_error(exc) from None
        log.info("account_deleted", user_id=principal.user_id)
