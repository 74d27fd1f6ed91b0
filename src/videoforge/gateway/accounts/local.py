"""Local accounts in the gateway's own tables (the embedded default).

Argon2id hashes, rehashed on log-in when the hasher's parameters change; the gateway's
own ES256 tokens (:mod:`.tokens`). Refresh tokens are single use: each refresh revokes
the presented ``jti`` and issues a new one; presenting a revoked one again (a stolen
token being replayed) revokes every refresh token of the account.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Protocol

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gateway.accounts import recovery
from videoforge.gateway.accounts.models import Account, RefreshToken, RevokeReason, TokenPurpose
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
from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.infra.auth.principal import Principal, clean_display_name, neutral_name
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Unauthorized,
    UnprocessableEntity,
)

log = structlog.get_logger("videoforge.gateway.accounts")


class LinkConfirmer(Protocol):
    """Uses a mailed confirmation link (:class:`~.local_recovery.LocalRecovery`, which
    is built on these accounts and registers itself here)."""

    async def confirm_token(self, token: str, *, base_url: str) -> None: ...


def _revoked() -> Unauthorized:
    return Unauthorized(
        "This session has ended; log in again.",
        code="token_revoked",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class LocalAccounts:
    """Local accounts in the gateway's own tables. Each public method is one transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        issuer: TokenIssuer,
        *,
        hasher: PasswordHasher | None = None,
        admin_group: str = "admin",
        mail: recovery.AccountMail | None = None,
        confirm_email: bool = False,
        confirm_ttl: int = 48 * 3600,
    ) -> None:
        self.sessions = sessions
        self.issuer = issuer
        self.hasher = hasher or PasswordHasher()
        self.admin_group = admin_group
        self._dummy_hash: str | None = None
        #: Sign-ups confirm their address by mail (``EMAIL_CONFIRMATION``).
        self.mail = mail
        self.confirm_email = confirm_email and mail is not None
        self.confirm_ttl = confirm_ttl
        #: The mailed-link flows (set by the app when it builds them).
        self.recovery: LinkConfirmer | None = None

    # -- hashing (CPU-bound: off the event loop) --------------------------------
    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("password_hash_unusable")
            return False

    async def _burn_time(self, password: str) -> None:
        """Verify against a throwaway hash so unknown e-mails cost as much as wrong passwords."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(uuid.uuid4().hex)
        await self._verify(self._dummy_hash, password)

    # -- helpers -------------------------------------------------------------------
    def groups_of(self, account: Account) -> list[str]:
        return [self.admin_group] if account.is_admin else []

    @staticmethod
    def public_name(account: Account) -> str:
        """The name other users see (the token's ``name`` claim): the display name, or a
        neutral ``user-xxxxxx`` — never the e-mail address or a part of it.

        Read from the row at every issue (login, refresh, password change), so a new
        display name reaches the next access token."""
        return clean_display_name(account.display_name) or neutral_name(str(account.id))

    def user_read(self, account: Account) -> UserRead:
        groups = self.groups_of(account)
        return UserRead(
            id=str(account.id),
            email=account.email,
            display_name=account.display_name,
            groups=groups,
            is_admin=account.is_admin,
        )

    async def _issue(self, session: AsyncSession, account: Account) -> AuthResponse:
        """Mint an access token and a new stored refresh token (flushed, not committed)."""
        jti = uuid.uuid4().hex
        now = utcnow()
        session.add(
            RefreshToken(
                jti=jti,
                account_id=account.id,
                created_at=now,
                expires_at=datetime.fromtimestamp(now.timestamp() + self.issuer.refresh_ttl, UTC),
            )
        )
        await session.flush()
        return AuthResponse(
            user=self.user_read(account),
            access_token=self.issuer.issue_access(
                str(account.id),
                username=account.email,
                groups=self.groups_of(account),
                display_name=self.public_name(account),
            ),
            refresh_token=self.issuer.issue_refresh(str(account.id), jti=jti),
            expires_in=self.issuer.access_ttl,
        )

    @staticmethod
    async def _by_id(session: AsyncSession, user_id: str) -> Account | None:
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            return None
        return await session.get(Account, key)

    @staticmethod
    async def revoke_all(session: AsyncSession, account_id: uuid.UUID, reason: RevokeReason) -> int:
        """Revoke every live refresh token of an account; returns how many."""
        result = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )
        await session.flush()
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- AuthProvider --------------------------------------------------------------
    async def signup(self, data: SignupRequest, *, base_url: str = "") -> AuthResponse:
        """Create an account and log it in (with e-mail confirmation on: create it
        unconfirmed and mail a link, see :meth:`_signup_unconfirmed`).

        A registered address is answered 409 ``email_taken``. Without e-mail
        confirmation that cannot be hidden: the answer for a free address is a working
        session for it, which the answer for a taken one cannot be, so whoever tries an
        address learns either way (an answer shaped like a pending confirmation would
        only mislead the owner, who is sent nothing). What is kept equal is everything
        else: the address and the password are checked (422) before the lookup, so they
        never depend on whether the address is taken, and the password is hashed either
        way, so a 409 takes as long as the hashing of a 201. The sign-up rate limits (per
        client address and per address tried) bound how many addresses can be probed.
        """
        email = normalise_email(data.email)
        display_name = (data.display_name or "").strip() or None
        await check_password_policy(data.password, email=email, display_name=display_name)
        password_hash = await self._hash(data.password)
        if self.confirm_email:
            return await self._signup_unconfirmed(email, display_name, password_hash, base_url)
        try:
            async with session_scope(self.sessions) as session:
                if await recovery.account_by_email(session, email) is not None:
                    raise _email_taken()
                account = Account(
                    email=email, display_name=display_name, password_hash=password_hash
                )
                session.add(account)
                await session.flush()
                response = await self._issue(session, account)
        except IntegrityError:
            # Two sign-ups with one address at once: the unique index decides.
            raise _email_taken() from None
        log.info("account_created", user_id=response.user.id)
        return response

    async def _signup_unconfirmed(
        self, email: str, display_name: str | None, password_hash: str, base_url: str
    ) -> AuthResponse:
        """An unconfirmed account and a mailed link to confirm it.

        A registered address gets the same answer (201, ``confirmation_required``, a
        random id in place of the account's) and its owner is mailed a notice instead,
        so a stranger learns nothing; the existing account does not change."""
        assert self.mail is not None
        mail = self.mail
        token: str | None = None
        try:
            async with session_scope(self.sessions) as session:
                if await recovery.account_by_email(session, email) is None:
                    account = Account(
                        email=email,
                        display_name=display_name,
                        password_hash=password_hash,
                        email_confirmed=False,
                    )
                    session.add(account)
                    await session.flush()
                    user_id = str(account.id)
                    token = await recovery.issue_token(
                        session, account.id, TokenPurpose.CONFIRM_EMAIL, email, self.confirm_ttl
                    )
        except IntegrityError:
            token = None  # the same address signed up at the same moment: it is taken
        if token is None:
            log.info("signup_address_taken")
            user_id = str(uuid.uuid4())
            mail.already_registered(email, base_url)
        else:
            log.info("account_created", user_id=user_id, confirmed=False)
            mail.confirm_address(email, base_url, token, self.confirm_ttl)
        return AuthResponse(
            user=UserRead(id=user_id, email=email, display_name=display_name),
            confirmation_required=True,
            confirmation="link",
        )

    async def confirm(self, data: ConfirmRequest, *, base_url: str = "") -> None:
        """Use a mailed confirmation link (sign-up address or address change)."""
        if data.token is None or self.recovery is None:
            raise BadRequest(
                "Local accounts confirm with the link's token, not a code.",
                code="confirmation_not_needed",
            )
        await self.recovery.confirm_token(data.token, base_url=base_url)

    async def login(self, data: LoginRequest) -> AuthResponse:
        """Check the password (rehashing when the parameters changed) and issue tokens.

        Hashing is slow on purpose, so it happens between two short transactions: on
        SQLite a transaction holds the database's write lock.
        """
        try:
            email = normalise_email(data.email)
        except UnprocessableEntity:
            await self._burn_time(data.password)
            raise invalid_credentials() from None
        async with session_scope(self.sessions) as session:
            found = await recovery.account_by_email(session, email)
            account_id, stored = (found.id, found.password_hash) if found else (None, "")
        if account_id is None:
            await self._burn_time(data.password)
            raise invalid_credentials()
        if not await self._verify(stored, data.password):
            raise invalid_credentials()
        rehashed = (
            await self._hash(data.password) if self.hasher.check_needs_rehash(stored) else None
        )
        async with session_scope(self.sessions) as session:
            account = await session.get(Account, account_id, populate_existing=True)
            if account is None:
                raise invalid_credentials()
            if self.confirm_email and account.email_confirmed is False:
                # Only after the password: the refusal must not tell strangers anything.
                raise Forbidden(
                    "Confirm your e-mail address first: use the link we sent you, or ask "
                    "for a new one.",
                    code="email_not_confirmed",
                )
            # Only replace the hash we verified: a password changed meanwhile wins.
            if rehashed is not None and account.password_hash == stored:
                account.password_hash = rehashed
                log.info("password_rehashed", user_id=str(account.id))
            account.last_login_at = utcnow()
            return await self._issue(session, account)

    async def refresh(self, refresh_token: str) -> AuthResponse:
        """Trade a refresh token for new tokens; the old one is revoked (single use)."""
        claims = self.issuer.verify_refresh(refresh_token)
        reused_by: uuid.UUID | None = None
        async with session_scope(self.sessions) as session:
            now = utcnow()
            result = await session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.jti == claims.jti,
                    RefreshToken.revoked_at.is_(None),
                    RefreshToken.expires_at > now,
                )
                .values(revoked_at=now, revoked_reason=RevokeReason.ROTATED)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                account = await self._by_id(session, claims.user_id)
                if account is None:
                    raise _revoked()
                return await self._issue(session, account)
            row = await session.get(RefreshToken, claims.jti)
            if row is not None and row.revoked_reason is RevokeReason.ROTATED:
                reused_by = row.account_id
        if reused_by is not None:
            # A revoked token came back: someone holds a copy. End every session.
            async with session_scope(self.sessions) as session:
                count = await self.revoke_all(session, reused_by, RevokeReason.REUSE)
            log.warning("refresh_token_reused", user_id=str(reused_by), revoked=count)
        raise _revoked()

    async def logout(self, refresh_token: str | None, access_token: str | None) -> None:
        """Revoke the presented refresh token (access tokens simply expire)."""
        if not refresh_token:
            return
        claims = self.issuer.verify_refresh(refresh_token)
        async with session_scope(self.sessions) as session:
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.jti == claims.jti, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason=RevokeReason.LOGOUT)
            )

    async def change_password(
        self, principal: Principal, access_token: str, data: PasswordChangeRequest
    ) -> AuthResponse:
        """Check the current password, store the new one, end every other session."""
        async with session_scope(self.sessions) as session:
            found = await self._by_id(session, principal.user_id)
            if found is None:
                raise _revoked()
            account_id, email, stored = found.id, found.email, found.password_hash
            display_name = found.display_name
        if not await self._verify(stored, data.current_password):
            raise Unauthorized("The current password is wrong.", code="invalid_credentials")
        await check_password_policy(data.new_password, email=email, display_name=display_name)
        new_hash = await self._hash(data.new_password)
        async with session_scope(self.sessions) as session:
            # Conditional on the hash we checked: two concurrent changes cannot both win.
            result = await session.execute(
                update(Account)
                .where(Account.id == account_id, Account.password_hash == stored)
                .values(password_hash=new_hash, password_changed_at=utcnow(), updated_at=utcnow())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(
                    "The password was changed meanwhile; try again.", code="password_changed"
                )
            await self.revoke_all(session, account_id, RevokeReason.PASSWORD)
            account = await session.get(Account, account_id, populate_existing=True)
            assert account is not None
            log.info("password_changed", user_id=str(account_id))
            return await self._issue(session, account)

    async def me(self, principal: Principal, access_token: str) -> UserRead:
        """The caller's account."""
        async with session_scope(self.sessions) as session:
            account = await self._by_id(session, principal.user_id)
            if account is None:
                raise _revoked()
            read = self.user_read(account)
            read.pending_email = await recovery.pending_email(session, account.id)
            return read


def _email_taken() -> Conflict:
    return Conflict("An account with this e-mail address already exists.", code="email_taken")
