"""Password reset, confirmation mail, profile edits and deletion of local accounts.

The :class:`~videoforge.gateway.accounts.recovery.AccountRecovery` of local accounts, beside
:class:`~videoforge.gateway.accounts.local.LocalAccounts` (whose hashing, password policy and
session revocation it uses). Every public method is one or two short transactions;
hashing happens between them, as in ``LocalAccounts.login``.
"""

from __future__ import annotations

import structlog
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from videoforge.gateway.accounts import recovery
from videoforge.gateway.accounts.local import LocalAccounts
from videoforge.gateway.accounts.models import (
    Account,
    AccountToken,
    RefreshToken,
    RevokeReason,
    TokenPurpose,
)
from videoforge.gateway.accounts.policy import check_password_policy, normalise_email
from videoforge.gateway.accounts.schemas import MeUpdate, PasswordResetRequest, UserRead
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import (
    BadRequest,
    Conflict,
    Unauthorized,
    UnprocessableEntity,
)

log = structlog.get_logger("videoforge.gateway.local_recovery")

_RESET = frozenset({TokenPurpose.PASSWORD_RESET})
_CONFIRM = frozenset({TokenPurpose.CONFIRM_EMAIL, TokenPurpose.CHANGE_EMAIL})


def _session_ended() -> Unauthorized:
    return Unauthorized("This session has ended; log in again.", code="token_revoked")


class LocalRecovery:
    """See the module docstring."""

    def __init__(
        self,
        accounts: LocalAccounts,
        mail: recovery.AccountMail,
        *,
        reset_ttl: int = 3600,
        confirm_ttl: int = 48 * 3600,
    ) -> None:
        self.accounts = accounts
        self.sessions = accounts.sessions
        self.mail = mail
        self.reset_ttl = reset_ttl
        self.confirm_ttl = confirm_ttl
        accounts.recovery = self

    # -- password reset ----------------------------------------------------------------
    async def forgot_password(self, email: str, *, base_url: str) -> None:
        """Mail a reset link if the address has an account; nothing otherwise. All of it
        after the answer (see :mod:`videoforge.gateway.accounts.recovery`)."""
        try:
            address = normalise_email(email)
        except UnprocessableEntity:
            return

        async def work() -> None:
            async with session_scope(self.sessions) as session:
                account = await recovery.account_by_email(session, address)
                if account is None:
                    log.info("password_forgot_unknown_address")
                    return
                token = await recovery.issue_token(
                    session, account.id, TokenPurpose.PASSWORD_RESET, address, self.reset_ttl
                )
                user_id = str(account.id)
            log.info("password_reset_mailed", user_id=user_id)
            self.mail.password_reset(address, base_url, token, self.reset_ttl)

        self.mail.later("password_forgot", work)

    async def reset_password(self, data: PasswordResetRequest, *, base_url: str) -> None:
        """Set a new password with a reset link: the link is used up, every refresh
        token revoked, and the address counts as confirmed (the mail reached it)."""
        if data.token is None:
            raise BadRequest("Local accounts reset with the link's token.", code="token_invalid")
        async with session_scope(self.sessions) as session:
            row = await recovery.peek_token(session, data.token, _RESET)
            account = await session.get(Account, row.account_id)
            if account is None or account.email != row.email:
                # The address changed after the mail went out: the link was for the old one.
                raise recovery.invalid_token()
            email, display_name = account.email, account.display_name
        # The policy first: a refused password must not use the link up.
        await check_password_policy(data.password, email=email, display_name=display_name)
        new_hash = await self.accounts._hash(data.password)
        async with session_scope(self.sessions) as session:
            row = await recovery.peek_token(session, data.token, _RESET)
            await recovery.consume_token(session, row)
            now = utcnow()
            await session.execute(
                update(Account)
                .where(Account.id == row.account_id)
                .values(
                    password_hash=new_hash,
                    password_changed_at=now,
                    updated_at=now,
                    email_confirmed=True,
                )
            )
            revoked = await self.accounts.revoke_all(session, row.account_id, RevokeReason.RESET)
        log.info("password_reset", user_id=str(row.account_id), sessions_revoked=revoked)
        self.mail.password_was_reset(email, base_url)

    # -- confirmation --------------------------------------------------------------------
    async def resend_confirmation(self, email: str, *, base_url: str) -> None:
        """A new confirmation link for an unconfirmed account; nothing otherwise."""
        try:
            address = normalise_email(email)
        except UnprocessableEntity:
            return

        async def work() -> None:
            async with session_scope(self.sessions) as session:
                account = await recovery.account_by_email(session, address)
                if account is None or account.email_confirmed is not False:
                    return
                token = await recovery.issue_token(
                    session, account.id, TokenPurpose.CONFIRM_EMAIL, address, self.confirm_ttl
                )
            self.mail.confirm_address(address, base_url, token, self.confirm_ttl)

        self.mail.later("confirm_resend", work)

    async def confirm_token(self, token: str, *, base_url: str) -> None:
        """Use a confirmation link: the sign-up address is confirmed, or the account
        moves to the new address (and the old one is told)."""
        old_address: str | None = None
        try:
            async with session_scope(self.sessions) as session:
                row = await recovery.peek_token(session, token, _CONFIRM)
                account = await session.get(Account, row.account_id, populate_existing=True)
                if account is None:
                    raise recovery.invalid_token()
                await recovery.consume_token(session, row)
                if row.purpose is TokenPurpose.CHANGE_EMAIL:
                    if account.email != row.email:
                        old_address = account.email
                        account.email = row.email
                    account.email_confirmed = True
                    account.updated_at = utcnow()
                elif account.email == row.email:
                    account.email_confirmed = True
                else:
                    raise recovery.invalid_token()  # sent to an address it no longer has
                await session.flush()
                user_id = str(account.id)
        except IntegrityError:
            # The new address got an account of its own since the link was mailed.
            raise Conflict(
                "An account with this e-mail address already exists.", code="email_taken"
            ) from None
        log.info("email_confirmed", user_id=user_id, changed=old_address is not None)
        if old_address is not None:
            self.mail.address_changed(old_address, row.email, base_url)

    # -- settings --------------------------------------------------------------------
    async def update_me(
        self, principal: Principal, access_token: str, data: MeUpdate, *, base_url: str
    ) -> UserRead:
        """Change the display name at once; a new address only once confirmed."""
        fields = data.model_fields_set
        new_email: str | None = None
        if "email" in fields and data.email is not None:
            new_email = normalise_email(data.email)
        async with session_scope(self.sessions) as session:
            account = await self.accounts._by_id(session, principal.user_id)
            if account is None:
                raise _session_ended()
            if new_email == account.email:
                new_email = None
            stored = account.password_hash
        if new_email is not None and (
            not data.current_password
            or not await self.accounts._verify(stored, data.current_password)
        ):
            raise Unauthorized(
                "Enter your current password to change your e-mail address.",
                code="invalid_credentials",
            )
        async with session_scope(self.sessions) as session:
            account = await self.accounts._by_id(session, principal.user_id)
            if account is None:
                raise _session_ended()
            if "display_name" in fields:
                account.display_name = (data.display_name or "").strip() or None
                account.updated_at = utcnow()
            token: str | None = None
            taken = False
            if new_email is not None:
                taken = await recovery.account_by_email(session, new_email) is not None
                # Issued for a taken address too (and never sent): the answer, and
                # ``pending_email`` afterwards, must not tell the caller it is taken.
                token = await recovery.issue_token(
                    session, account.id, TokenPurpose.CHANGE_EMAIL, new_email, self.confirm_ttl
                )
            await session.flush()
            read = self.accounts.user_read(account)
            read.pending_email = await recovery.pending_email(session, account.id)
        if new_email is not None:
            assert token is not None
            # The owner of a taken address is told instead; the caller learns it no
            # sooner than that owner reads the mail.
            if taken:
                self.mail.change_address_taken(new_email, base_url)
            else:
                self.mail.change_address(new_email, base_url, token, self.confirm_ttl)
            log.info("email_change_requested", user_id=principal.user_id)
        return read

    # -- deletion --------------------------------------------------------------------
    async def check_password(self, principal: Principal, access_token: str, password: str) -> None:
        async with session_scope(self.sessions) as session:
            account = await self.accounts._by_id(session, principal.user_id)
            if account is None:
                raise _session_ended()
            stored = account.password_hash
        if not await self.accounts._verify(stored, password):
            raise Unauthorized("The password is wrong.", code="invalid_credentials")

    async def delete_account(self, principal: Principal, access_token: str) -> None:
        """Remove the account row, its refresh tokens and its links. The videos are the
        gallery's and the jobs the job domain's: the caller deletes them first."""
        async with session_scope(self.sessions) as session:
            account = await self.accounts._by_id(session, principal.user_id)
            if account is None:
                raise _session_ended()
            email = account.email
            # Explicit rather than trusting ON DELETE CASCADE to be enabled everywhere.
            await session.execute(delete(AccountToken).where(AccountToken.account_id == account.id))
            await session.execute(delete(RefreshToken).where(RefreshToken.account_id == account.id))
            await session.execute(delete(Account).where(Account.id == account.id))
        log.info("account_deleted", user_id=principal.user_id)
        self.mail.account_deleted(email)
