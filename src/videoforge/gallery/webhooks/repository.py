"""SQL of webhooks: endpoints per user, deliveries (fan-out, claims, outcomes, the log)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.webhooks.models import DeliveryState, GalleryWebhook, GalleryWebhookDelivery


async def count_of(session: AsyncSession, user_id: str) -> int:
    stmt = select(func.count()).select_from(GalleryWebhook).where(GalleryWebhook.user_id == user_id)
    return int((await session.execute(stmt)).scalar_one())


async def delete_all_of(session: AsyncSession, user_id: str) -> int:
    """Remove every endpoint of a user (their deliveries go with them, by cascade)."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(GalleryWebhook).where(GalleryWebhook.user_id == user_id)
    )
    return int(result.rowcount or 0)


async def own(session: AsyncSession, webhook_id: uuid.UUID, user_id: str) -> GalleryWebhook | None:
    stmt = select(GalleryWebhook).where(
        GalleryWebhook.id == webhook_id, GalleryWebhook.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_of(session: AsyncSession, user_id: str) -> list[GalleryWebhook]:
    stmt = (
        select(GalleryWebhook)
        .where(GalleryWebhook.user_id == user_id)
        .order_by(GalleryWebhook.created_at, GalleryWebhook.id)
    )
    return list((await session.execute(stmt)).scalars())


async def subscribers(session: AsyncSession, user_id: str) -> list[GalleryWebhook]:
    """The user's enabled endpoints (which event types each wants is checked by the caller:
    the list is JSON)."""
    stmt = select(GalleryWebhook).where(
        GalleryWebhook.user_id == user_id, GalleryWebhook.enabled.is_(True)
    )
    return list((await session.execute(stmt)).scalars())


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert deliveries; one that exists already (same endpoint and event) is kept."""
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(GalleryWebhookDelivery)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
    )


async def due(session: AsyncSession, now: datetime, limit: int, *, per_endpoint: int) -> list[int]:
    """Up to ``limit`` due deliveries, the longest waiting first, at most
    ``per_endpoint`` of any one endpoint: an endpoint with a backlog (or one that never
    answers) takes its share of a round, not the round."""
    d = GalleryWebhookDelivery
    ranked = (
        select(
            d.id,
            d.next_attempt_at,
            func.row_number()
            .over(partition_by=d.webhook_id, order_by=(d.next_attempt_at, d.id))
            .label("place"),
        )
        .where(d.state == DeliveryState.PENDING, d.next_attempt_at <= now)
        .subquery()
    )
    stmt = (
        select(ranked.c.id)
        .where(ranked.c.place <= per_endpoint)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def claim(
    session: AsyncSession, delivery_id: int, *, now: datetime, lease_until: datetime
) -> bool:
    """Take one due delivery for an attempt: its next attempt moves to the lease's end,
    so no other loop takes it meanwhile, and it comes back if this process dies."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryWebhookDelivery)
        .where(
            GalleryWebhookDelivery.id == delivery_id,
            GalleryWebhookDelivery.state == DeliveryState.PENDING,
            GalleryWebhookDelivery.next_attempt_at <= now,
        )
        .values(
            next_attempt_at=lease_until,
            attempts=GalleryWebhookDelivery.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def make_due_again(session: AsyncSession, delivery_id: int, *, now: datetime) -> bool:
    """A finished (delivered or failed) delivery becomes pending and due at ``now``;
    False when it is pending already (conditional, so a running attempt is not doubled)."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryWebhookDelivery)
        .where(
            GalleryWebhookDelivery.id == delivery_id,
            GalleryWebhookDelivery.state != DeliveryState.PENDING,
        )
        .values(state=DeliveryState.PENDING, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def for_attempt(
    session: AsyncSession, delivery_id: int
) -> tuple[GalleryWebhookDelivery, GalleryWebhook, GalleryLifecycleEvent] | None:
    stmt = (
        select(GalleryWebhookDelivery, GalleryWebhook, GalleryLifecycleEvent)
        .join(GalleryWebhook, GalleryWebhook.id == GalleryWebhookDelivery.webhook_id)
        .join(GalleryLifecycleEvent, GalleryLifecycleEvent.id == GalleryWebhookDelivery.event_id)
        .where(GalleryWebhookDelivery.id == delivery_id)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def record(session: AsyncSession, delivery_id: int, attempts: int, **values: Any) -> bool:
    """Write an attempt's outcome, only if the delivery is still this attempt's (a
    later claim after an expired lease owns it otherwise)."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryWebhookDelivery)
        .where(
            GalleryWebhookDelivery.id == delivery_id,
            GalleryWebhookDelivery.attempts == attempts,
            GalleryWebhookDelivery.state == DeliveryState.PENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def disable(session: AsyncSession, webhook_id: uuid.UUID, reason: str, now: datetime) -> None:
    await session.execute(
        update(GalleryWebhook)
        .where(GalleryWebhook.id == webhook_id)
        .values(enabled=False, disabled_reason=reason[:200], updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def log_page(
    session: AsyncSession, webhook_id: uuid.UUID, *, before: int | None, limit: int
) -> list[GalleryWebhookDelivery]:
    """Deliveries of one endpoint, the newest first."""
    stmt = select(GalleryWebhookDelivery).where(GalleryWebhookDelivery.webhook_id == webhook_id)
    if before is not None:
        stmt = stmt.where(GalleryWebhookDelivery.id < before)
    stmt = stmt.order_by(GalleryWebhookDelivery.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())
