"""What the operator does to local accounts from the command line (``videoforge admin``,
``videoforge users``): no tokens are minted here, so no signing key is needed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gateway.accounts import recovery
from videoforge.gateway.accounts.local import LocalAccounts
from videoforge.gateway.accounts.models import Account, RevokeReason
from videoforge.gateway.accounts.policy import normalise_email
from videoforge.infra.db import session_scope
from videoforge.infra.errors import UnprocessableEntity


async def set_admin(sessions: async_sessionmaker[AsyncSession], email: str, admin: bool) -> bool:
    """Grant or revoke the admin group; False when there is no such account.

    Existing access tokens keep their groups until they expire (minutes); refresh
    tokens are revoked on revocation so that a demoted admin cannot keep refreshing.
    """
    try:
        normalised = normalise_email(email)
    except UnprocessableEntity:
        return False
    async with session_scope(sessions) as session:
        account = await recovery.account_by_email(session, normalised)
        if account is None:
            return False
        account.is_admin = admin
        if not admin:
            await LocalAccounts.revoke_all(session, account.id, RevokeReason.ADMIN)
        await session.flush()
        return True


async def list_accounts(sessions: async_sessionmaker[AsyncSession]) -> list[Account]:
    """Every account, oldest first."""
    async with session_scope(sessions) as session:
        rows = await session.execute(select(Account).order_by(Account.created_at))
        return list(rows.scalars())
