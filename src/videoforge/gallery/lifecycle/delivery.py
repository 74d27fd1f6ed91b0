"""The delivery loop: fans lifecycle events out of the outbox, once per gallery instance.

Each round: write the ``video.published`` events of videos whose publication came (a
schedule passing is noticed here, within a round), claim the events not yet fanned out
and create a webhook delivery for each subscriber (one transaction, conditional on the
event not being claimed already), put the pending ones on the EventBridge bus (when
``EVENTBRIDGE_BUS_NAME`` is set), and now and then drop events older than
:data:`RETENTION`; beside those rounds, a loop of its own attempts the webhook
deliveries that are due. Every step is at least once: an event is marked sent only
after EventBridge took it, a delivery only after its receiver answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from videoforge.gallery import publishing
from videoforge.gallery.lifecycle import repository
from videoforge.gallery.lifecycle.eventbridge import MAX_ENTRIES, EventBridgePublisher
from videoforge.gallery.lifecycle.metrics import EVENTBRIDGE_ENTRIES
from videoforge.gallery.lifecycle.schemas import EventType
from videoforge.gallery.webhooks import service as webhooks
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import log_failure
from videoforge.infra.runtime import Infra

log = structlog.get_logger("videoforge.gallery.lifecycle")

POLL_SECONDS = 1.0
ERROR_BACKOFF_SECONDS = 5.0
FAN_OUT_BATCH = 100
#: Events (and their delivery log) are kept this long; far beyond the retry budget.
RETENTION = timedelta(days=7)
PURGE_EVERY_SECONDS = 3600.0


async def fan_out_once(infra: Infra, *, bridge: bool) -> int:
    """Fan out a batch of events; returns how many this call claimed."""
    claimed = 0
    async with session_scope(infra.sessions) as session:
        now = utcnow()
        for event in await repository.not_fanned_out(session, FAN_OUT_BATCH):
            to_bridge = bridge and event.type != EventType.WEBHOOK_TEST.value
            if not await repository.mark_fanned_out(session, event.id, now=now, bridge=to_bridge):
                continue  # another instance's loop has it
            await webhooks.fan_out(session, event, now)
            claimed += 1
    return claimed


async def bridge_once(infra: Infra, publisher: EventBridgePublisher) -> int:
    """Put one batch of pending events on the bus; returns how many it took."""
    async with session_scope(infra.sessions) as session:
        events = await repository.to_bridge(session, MAX_ENTRIES)
        if not events:
            return 0
        accepted = await publisher.put(events)
        await repository.bridged(session, accepted)
    EVENTBRIDGE_ENTRIES.labels(result="accepted").inc(len(accepted))
    if len(accepted) < len(events):
        EVENTBRIDGE_ENTRIES.labels(result="refused").inc(len(events) - len(accepted))
        log.warning("eventbridge_entries_refused", refused=len(events) - len(accepted))
    return len(accepted)


async def announce_once(infra: Infra) -> int:
    """Write the ``video.published`` events that came due (gallery.publishing)."""
    async with session_scope(infra.sessions) as session:
        return await publishing.announce_due(session)


async def purge_once(infra: Infra) -> int:
    async with session_scope(infra.sessions) as session:
        return await repository.purge(session, before=utcnow() - RETENTION)


async def events_once(infra: Infra, publisher: EventBridgePublisher | None) -> int:
    """The events' side of a round: announce, fan out, bridge; how much work it found."""
    work = await announce_once(infra)
    work += await fan_out_once(infra, bridge=publisher is not None)
    if publisher is not None:
        try:
            work += await bridge_once(infra, publisher)
        except Exception:
            # The bus being down must not hold up webhooks; the events stay pending.
            log.exception("eventbridge_put_failed")
    return work


async def run_once(
    infra: Infra,
    *,
    publisher: EventBridgePublisher | None = None,
    sender: webhooks.WebhookSender | None = None,
) -> int:
    """One round of every step, in order; returns how much work it found (0: nothing)."""
    work = await events_once(infra, publisher)
    work += await webhooks.deliver_due(infra, sender)
    return work


async def _repeat(step: Callable[[], Awaitable[int]], stop: asyncio.Event, failed: str) -> None:
    """``step`` again and again until ``stop``: at once while it finds work, else after
    :data:`POLL_SECONDS` (:data:`ERROR_BACKOFF_SECONDS` after an error, logged as
    ``failed``)."""
    while not stop.is_set():
        pause = POLL_SECONDS
        try:
            if await step():
                continue  # more may be waiting
        except Exception as exc:
            log_failure(log, failed, exc)
            pause = ERROR_BACKOFF_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)


async def run_lifecycle_delivery(
    infra: Infra,
    stop: asyncio.Event,
    *,
    publisher: EventBridgePublisher | None = None,
) -> None:
    """Deliver lifecycle events until ``stop`` is set (run it in one process per
    instance: :func:`videoforge.infra.leader.run_as_leader`).

    The events' rounds (fan-out, the EventBridge bus, purges) and the webhook attempts
    run side by side, so receivers that are slow or never answer (an attempt waits up to
    WEBHOOK_TIMEOUT) never hold up the bus or the fan-out. At ``stop``, attempts under
    way get WEBHOOK_TIMEOUT to finish; one cut short is attempted again once its lease
    ends (at least once).
    """
    if publisher is None:
        publisher = EventBridgePublisher.from_settings(infra.settings)
    log.info("lifecycle_delivery_started", eventbridge=publisher is not None)
    last_purge = 0.0

    async def events_round() -> int:
        nonlocal last_purge
        work = await events_once(infra, publisher)
        if time.monotonic() - last_purge > PURGE_EVERY_SECONDS:
            last_purge = time.monotonic()
            await purge_once(infra)
        return work

    attempts = asyncio.create_task(
        _repeat(lambda: webhooks.deliver_due(infra), stop, "webhook_delivery_failed")
    )
    try:
        await _repeat(events_round, stop, "lifecycle_delivery_failed")
    finally:
        try:
            await asyncio.wait({attempts}, timeout=infra.settings.webhook_timeout)
        finally:
            attempts.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await attempts
    log.info("lifecycle_delivery_stopped")
