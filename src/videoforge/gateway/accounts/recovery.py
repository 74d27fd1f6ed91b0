"""Mailed links of local accounts: password reset, address confirmation, address change.

Each link carries a random 256-bit token; only its SHA-256 is stored
(:class:`~videoforge.gateway.accounts.models.AccountToken`), with its purpose, the address it
was sent to and its expiry. Using one is a single conditional UPDATE (unused, unexpired,
right purpose), so a link works once even when it is clicked twice at the same moment.

What a stranger can learn is kept to nothing: asking for a reset or a new confirmation
answers the same 202 for any address, and the lookup, the token and the mail all happen
after the answer (:meth:`AccountMail.later`), so neither the answer nor its timing
depends on whether the address has an account.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol
from urllib.parse import quote

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gateway.accounts.mail import Mail, MailOutbox
from videoforge.gateway.accounts.models import Account, AccountToken, TokenPurpose
from videoforge.gateway.accounts.schemas import MeUpdate, PasswordResetRequest, UserRead
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import utcnow
from videoforge.infra.errors import AppError, BadRequest

log = structlog.get_logger("videoforge.gateway.recovery")

SITE_NAME = "VideoForge"


class TokenGone(AppError):
    """A link that did work once: used already, or expired."""

    status_code = 410
    code = "token_used"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invalid_token() -> BadRequest:
    return BadRequest("This link is not valid. Ask for a new one.", code="token_invalid")


def _used() -> TokenGone:
    return TokenGone("This link was used already. Ask for a new one.", code="token_used")


def _expired() -> TokenGone:
    return TokenGone("This link has expired. Ask for a new one.", code="token_expired")


async def issue_token(
    session: AsyncSession,
    account_id: uuid.UUID,
    purpose: TokenPurpose,
    email: str,
    ttl: int,
) -> str:
    """A new link token (returned once, stored hashed); earlier unused links of the same
    purpose stop working, so only the newest mail counts."""
    now = utcnow()
    await session.execute(
        update(AccountToken)
        .where(
            AccountToken.account_id == account_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            token_hash=hash_token(token),
            account_id=account_id,
            purpose=purpose,
            email=email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    await session.flush()
    return token


async def peek_token(
    session: AsyncSession, token: str, purposes: frozenset[TokenPurpose]
) -> AccountToken:
    """The live token row (not consumed yet), or the stable error of why not."""
    if not token or len(token) > 256:
        raise invalid_token()
    row = await session.get(AccountToken, hash_token(token), populate_existing=True)
    if row is None or row.purpose not in purposes:
        raise invalid_token()
    if row.used_at is not None:
        raise _used()
    if row.expires_at <= utcnow():
        raise _expired()
    return row


async def consume_token(session: AsyncSession, row: AccountToken) -> None:
    """Use the link once: the conditional UPDATE that only one request can win."""
    now = utcnow()
    result = await session.execute(
        update(AccountToken)
        .where(
            AccountToken.token_hash == row.token_hash,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _used()


async def pending_email(session: AsyncSession, account_id: uuid.UUID) -> str | None:
    """The address an unconfirmed, unexpired address change would move to."""
    row = (
        await session.execute(
            select(AccountToken.email)
            .where(
                AccountToken.account_id == account_id,
                AccountToken.purpose == TokenPurpose.CHANGE_EMAIL,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > utcnow(),
            )
            .order_by(AccountToken.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return row


def _hours(seconds: int) -> str:
    hours = max(1, round(seconds / 3600))
    return "1 hour" if hours == 1 else f"{hours} hours"


class AccountMail:
    """The messages of local accounts, written and sent in the background."""

    def __init__(self, outbox: MailOutbox) -> None:
        self.outbox = outbox
        self._jobs: set[asyncio.Task[None]] = set()

    # -- background work ---------------------------------------------------------------
    def later(self, kind: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` after the answer (see the module docstring); failures are logged."""

        async def run() -> None:
            try:
                await work()
            except Exception:
                log.exception("account_mail_work_failed", kind=kind)

        task = asyncio.create_task(run(), name=f"account-mail:{kind}")
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def drain(self, seconds: float = 10.0) -> None:
        if self._jobs:
            await asyncio.wait(set(self._jobs), timeout=seconds)
        await self.outbox.drain(seconds)

    # -- messages ----------------------------------------------------------------------
    def password_reset(self, to: str, base_url: str, token: str, ttl: int) -> None:
        link = f"{base_url}/reset?token={quote(token)}"
        self.outbox.send(
            Mail(
                to=to,
                subject=f"Reset your {SITE_NAME} password",
                text=(
                    f"Someone (hopefully you) asked to reset the password of your {SITE_NAME} "
                    f"account.\n\nChoose a new password here:\n\n{link}\n\n"
                    f"The link works once, for {_hours(ttl)}. If you did not ask for it, "
                    "ignore this mail: your password stays as it is.\n"
                ),
            ),
            kind="password_reset",
        )

    def confirm_address(self, to: str, base_url: str, token: str, ttl: int) -> None:
        link = f"{base_url}/confirm-email?token={quote(token)}"
        self.outbox.send(
            Mail(
                to=to,
                subject=f"Confirm your address for {SITE_NAME}",
                text=(
                    f"Welcome to {SITE_NAME}! Confirm that this address is yours to finish "
                    f"signing up:\n\n{link}\n\nThe link works for {_hours(ttl)}. If you did "
                    "not sign up, ignore this mail; no account is used without it.\n"
                ),
            ),
            kind="confirm_email",
        )

    def already_registered(self, to: str, base_url: str) -> None:
        """To the owner of an address someone tried to sign up with again."""
        self.outbox.send(
            Mail(
                to=to,
                subject=f"Someone tried to sign up for {SITE_NAME} with your address",
                text=(
                    f"Someone (maybe you) tried to create a {SITE_NAME} account with this "
                    "address, which already has one. Nothing changed.\n\n"
                    f"Log in: {base_url}/login\nForgot your password? {base_url}/forgot\n"
                ),
            ),
            kind="signup_address_taken",
        )

    def change_address(self, to: str, base_url: str, token: str, ttl: int) -> None:
        link = f"{base_url}/confirm-email?token={quote(token)}"
        self.outbox.send(
            Mail(
                to=to,
                subject=f"Confirm your new address for {SITE_NAME}",
                text=(
                    f"Confirm that your {SITE_NAME} account should use this address from "
                    f"now on:\n\n{link}\n\nThe link works for {_hours(ttl)}. Until then the "
                    "account keeps its old address. If you did not ask for this, ignore "
                    "this mail.\n"
                ),
            ),
            kind="change_email",
        )

    def change_address_taken(self, to: str, base_url: str) -> None:
        self.outbox.send(
            Mail(
                to=to,
                subject=f"An address change on {SITE_NAME}",
                text=(
                    f"Someone asked to move a {SITE_NAME} account to this address, which "
                    "already has an account of its own, so nothing changed.\n\n"
                    f"Forgot your password? {base_url}/forgot\n"
                ),
            ),
            kind="change_email_taken",
        )

    def address_changed(self, old: str, new: str, base_url: str) -> None:
        """To the old address, once the new one is confirmed."""
        self.outbox.send(
            Mail(
                to=old,
                subject=f"Your {SITE_NAME} address was changed",
                text=(
                    f"Your {SITE_NAME} account now uses the address {new}; mail no longer "
                    "comes here. If you did not do this, someone has your password: "
                    f"write to the site's operator.\n\n{base_url}/\n"
                ),
            ),
            kind="email_changed",
        )

    def password_was_reset(self, to: str, base_url: str) -> None:
        self.outbox.send(
            Mail(
                to=to,
                subject=f"Your {SITE_NAME} password was reset",
                text=(
                    f"The password of your {SITE_NAME} account was just reset with a link "
                    "mailed here, and every session was signed out. If this was not you, "
                    f"reset it again: {base_url}/forgot\n"
                ),
            ),
            kind="password_was_reset",
        )

    def account_deleted(self, to: str) -> None:
        self.outbox.send(
            Mail(
                to=to,
                subject=f"Your {SITE_NAME} account was deleted",
                text=(
                    f"Your {SITE_NAME} account and its videos were deleted, as asked. "
                    "This cannot be undone.\n"
                ),
            ),
            kind="account_deleted",
        )


async def account_by_email(session: AsyncSession, email: str) -> Account | None:
    return (
        await session.execute(select(Account).where(Account.email == email))
    ).scalar_one_or_none()


class AccountRecovery(Protocol):
    """What the account-settings endpoints need from an identity provider: password
    reset, new confirmation mail, profile edits and deletion (local or Cognito)."""

    async def forgot_password(self, email: str, *, base_url: str) -> None: ...

    async def reset_password(self, data: PasswordResetRequest, *, base_url: str) -> None: ...

    async def resend_confirmation(self, email: str, *, base_url: str) -> None: ...

    async def update_me(
        self, principal: Principal, access_token: str, data: MeUpdate, *, base_url: str
    ) -> UserRead: ...

    async def check_password(
        self, principal: Principal, access_token: str, password: str
    ) -> None: ...

    async def delete_account(self, principal: Principal, access_token: str) -> None: ...
