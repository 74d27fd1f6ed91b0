"""Metrics of events for integrations, for alarms on a stuck or refused channel.

Read at scrape time from the outbox (``videoforge_lifecycle_events_pending`` and the age
of the oldest, per step: ``fan_out`` and ``eventbridge``; webhook deliveries by state),
and counted as they happen (webhook attempts by outcome, EventBridge entries taken or
refused). An alarm on the oldest pending age catches a delivery loop that stopped or a
bus that refuses every entry (wrong permissions, a deleted bus) before a day is lost.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.webhooks.models import DeliveryState, GalleryWebhookDelivery
from videoforge.infra.db import utcnow

EVENTS_PENDING = Gauge(
    "videoforge_lifecycle_events_pending",
    "Lifecycle events a step has still to take (read at scrape time).",
    ["step"],
)
OLDEST_PENDING = Gauge(
    "videoforge_lifecycle_oldest_pending_seconds",
    "Age of the oldest lifecycle event a step has still to take; 0 when none.",
    ["step"],
)
DELIVERIES = Gauge(
    "videoforge_webhook_deliveries",
    "Webhook deliveries in the log (seven days) by state (read at scrape time).",
    ["state"],
)
WEBHOOK_ATTEMPTS = Counter(
    "videoforge_webhook_attempts",
    "Webhook delivery attempts by outcome (delivered, retry, failed).",
    ["outcome"],
)
EVENTBRIDGE_ENTRIES = Counter(
    "videoforge_eventbridge_entries",
    "Lifecycle events put on the EventBridge bus, by result (accepted, refused).",
    ["result"],
)


async def _pending(session: AsyncSession, step: str, condition: object) -> None:
    e = GalleryLifecycleEvent
    query = select(func.count(), func.min(e.created_at)).where(condition)  # type: ignore[arg-type]
    count, oldest = (await session.execute(query)).one()
    EVENTS_PENDING.labels(step=step).set(count)
    if oldest is None:
        OLDEST_PENDING.labels(step=step).set(0)
        return
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=utcnow().tzinfo)
    OLDEST_PENDING.labels(step=step).set(max(0.0, (utcnow() - oldest).total_seconds()))


async def collect(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Set the scrape-time gauges from the outbox and the delivery log."""
    e = GalleryLifecycleEvent
    async with sessions() as session:
        await _pending(session, "fan_out", e.fanned_out_at.is_(None))
        await _pending(session, "eventbridge", e.bridge_pending.is_(True))
        d = GalleryWebhookDelivery
        rows = (await session.execute(select(d.state, func.count()).group_by(d.state))).all()
    counts = {state: count for state, count in rows}
    for state in DeliveryState:
        DELIVERIES.labels(state=state.value).set(counts.get(state, 0))
