"""SQL for local accounts and their sessions, in one place: the accounts, their
recovery and the operator's commands call these instead of writing queries. Each takes
the caller's session and only flushes."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gateway.accounts.models import Account, RefreshToken, RevokeReason
from videoforge.infra.db import utcnow


async def account_by_email(session: AsyncSession, email: str) -> Account | None:
    """The account of a normalised address (``policy.normalise_email``), if any."""
    return (
        await session.execute(select(Account).where(Account.email == email))
    ).scalar_one_or_none()


async def account_by_id(session: AsyncSession, user_id: str) -> Account | None:
    """The account a token's subject names; None for one that is gone or no id at all."""
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        return None
    return await session.get(Account, key)


async def revoke_sessions(
    session: AsyncSession, account_id: uuid.UUID, reason: RevokeReason
) -> int:
    """Revoke every live refresh token of an account; returns how many."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    await session.flush()
    return int(result.rowcount)  # type: ignore[attr-defined]
