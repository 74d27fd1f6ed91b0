"""SQL of the lifecycle outbox: what is still to fan out or to bridge, and the purge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent


async def not_fanned_out(session: AsyncSession, limit: int) -> list[GalleryLifecycleEvent]:
    """The oldest events no delivery loop has fanned out yet."""
    stmt = (
        select(GalleryLifecycleEvent)
        .where(GalleryLifecycleEvent.fanned_out_at.is_(None))
        .order_by(GalleryLifecycleEvent.created_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def mark_fanned_out(
    session: AsyncSession, event_id: uuid.UUID, *, now: datetime, bridge: bool
) -> bool:
    """Claim the fan-out of one event; False when another loop already did it."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryLifecycleEvent)
        .where(GalleryLifecycleEvent.id == event_id, GalleryLifecycleEvent.fanned_out_at.is_(None))
        .values(fanned_out_at=now, bridge_pending=bridge)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def to_bridge(session: AsyncSession, limit: int) -> list[GalleryLifecycleEvent]:
    """The oldest events EventBridge has yet to receive, locked for this transaction on
    PostgreSQL (another instance skips them); SQLite has one writer anyway."""
    stmt = (
        select(GalleryLifecycleEvent)
        .where(GalleryLifecycleEvent.bridge_pending.is_(True))
        .order_by(GalleryLifecycleEvent.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def bridged(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    if ids:
        await session.execute(
            update(GalleryLifecycleEvent)
            .where(GalleryLifecycleEvent.id.in_(list(ids)))
            .values(bridge_pending=False)
            .execution_options(synchronize_session=False)
        )


async def purge(session: AsyncSession, *, before: datetime) -> int:
    """Drop events older than ``before`` that went out everywhere (their deliveries go
    with them, by cascade: the retry budget is far shorter than the retention)."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        delete(GalleryLifecycleEvent).where(
            GalleryLifecycleEvent.created_at < before,
            GalleryLifecycleEvent.fanned_out_at.is_not(None),
            GalleryLifecycleEvent.bridge_pending.is_(False),
        )
    )
    return int(result.rowcount or 0)
