"""The rules of outgoing webhooks: registration (the URL checked by the SSRF-safe core),
one user's endpoints only, fan-out of lifecycle events to subscribers, and delivery
attempts with retries.

A delivery is one row per (endpoint, event). An attempt claims it under a lease (its
``next_attempt_at`` moves past the attempt's deadline, so a process that dies
mid-attempt leaves it to be tried again: at least once), POSTs the signed envelope
through :func:`videoforge.infra.safe_http.send_once` (the URL is checked again: DNS can
change; redirects are never followed) and records what :func:`decide` makes of it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.lifecycle.metrics import WEBHOOK_ATTEMPTS
from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.lifecycle.schemas import EventType, encode, envelope
from videoforge.gallery.webhooks import repository, signing
from videoforge.gallery.webhooks.models import DeliveryState, GalleryWebhook, GalleryWebhookDelivery
from videoforge.gallery.webhooks.schemas import WebhookCreate, WebhookUpdate
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import Conflict, NotFound, UnprocessableEntity
from videoforge.infra.runtime import Infra
from videoforge.infra.safe_http import (
    FetchFailed,
    FetchRejected,
    Resolver,
    allowed_set,
    check_url,
    send_once,
    system_resolver,
)
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery.webhooks")

MAX_WEBHOOKS_PER_USER = 25
#: Added to WEBHOOK_TIMEOUT for an attempt's lease (the time to record its outcome).
LEASE_SLACK_SECONDS = 30.0
DELIVERY_BATCH = 50
#: Attempts at once: one slow receiver does not hold up everyone else's.
CONCURRENT_ATTEMPTS = 4
#: Attempts per endpoint in one round: a round (which the next waits for) is never
#: one endpoint's backlog, or a receiver that never answers, WEBHOOK_TIMEOUT at a time.
PER_ENDPOINT_PER_ROUND = 2
USER_AGENT = "VideoForge-Webhooks/1"


@dataclass(frozen=True)
class WebhookSender:
    """How webhook URLs are resolved and which non-public addresses they may reach:
    none, except in tests (a loopback receiver). An object on the app's backends, never
    a setting, so that no environment variable can open the SSRF checks."""

    resolver: Resolver | None = None
    allow_addresses: tuple[str, ...] = ()


SENDER_KEY = "gallery.webhook_sender"


def sender_of(infra: Infra) -> WebhookSender:
    sender = infra.extras.get(SENDER_KEY)
    return sender if isinstance(sender, WebhookSender) else WebhookSender()


# --------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class RetryPolicy:
    base: float  # seconds before the first retry (about)
    cap: float  # the longest wait between two attempts
    budget: float  # seconds after the event's delivery was created; then it fails

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base=settings.webhook_retry_base_seconds,
            cap=settings.webhook_retry_max_seconds,
            budget=settings.webhook_retry_budget_seconds,
        )


def retry_delay(attempts: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts: ``base * 2^(attempts-1)``
    capped at ``cap``, then jittered down to half of that at most (so receivers that came
    back up are not hit by every sender at the same instant)."""
    ceiling: float = min(policy.cap, policy.base * float(2 ** min(max(attempts - 1, 0), 40)))
    jitter: float = (rng or random).uniform(0.5, 1.0)
    return ceiling * jitter


@dataclass(frozen=True)
class Decision:
    state: DeliveryState
    retry_in: float | None = None  # seconds, when it stays pending
    disable_endpoint: bool = False


def decide(
    status: int | None,
    attempts: int,
    age: float,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Decision:
    """What an attempt's answer means. ``status`` is None for no answer (refused address,
    connection error, timeout); ``age`` is the delivery's age in seconds. 2xx delivered;
    410 Gone fails it and disables the endpoint; anything else (3xx included: webhooks
    never follow redirects) is retried until the budget is spent."""
    if status is not None and 200 <= status < 300:
        return Decision(DeliveryState.DELIVERED)
    if status == 410:
        return Decision(DeliveryState.FAILED, disable_endpoint=True)
    delay = retry_delay(attempts, policy, rng)
    if age + delay > policy.budget:
        return Decision(DeliveryState.FAILED)
    return Decision(DeliveryState.PENDING, retry_in=delay)


# ------------------------------------------------------------------ registration
async def check_webhook_url(url: str, settings: Settings, sender: WebhookSender) -> None:
    """422 ``invalid_webhook_url`` unless ``url`` could be delivered to now: http(s), an
    allowed port, no user info, every address of its host public."""
    try:
        # Bounded: a name whose DNS never answers must not hold the request.
        async with asyncio.timeout(settings.webhook_timeout):
            await check_url(
                url,
                allowed_ports=settings.webhook_allowed_ports,
                resolver=sender.resolver or system_resolver,
                allowed=allowed_set(sender.allow_addresses),
            )
    except TimeoutError:
        raise UnprocessableEntity(
            "This URL cannot receive webhooks: its host name did not resolve in time.",
            code="invalid_webhook_url",
            details={"reason": "dns_timeout"},
        ) from None
    except (FetchRejected, FetchFailed) as exc:
        raise UnprocessableEntity(
            f"This URL cannot receive webhooks: {exc.message}",
            code="invalid_webhook_url",
            details={"reason": exc.code},
        ) from None


async def create(
    session: AsyncSession,
    settings: Settings,
    sender: WebhookSender,
    principal: Principal,
    body: WebhookCreate,
) -> GalleryWebhook:
    await check_webhook_url(body.url, settings, sender)
    if await repository.count_of(session, principal.user_id) >= MAX_WEBHOOKS_PER_USER:
        raise Conflict(
            f"You have {MAX_WEBHOOKS_PER_USER} webhooks already; delete one first.",
            code="webhook_limit_reached",
        )
    webhook = GalleryWebhook(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        url=body.url,
        events=[e.value for e in body.events],
        secret=signing.new_secret(),
        enabled=True,
    )
    session.add(webhook)
    await session.flush()
    return webhook


async def get_own(
    session: AsyncSession, webhook_id: uuid.UUID, principal: Principal
) -> GalleryWebhook:
    """The caller's webhook; 404 for anyone else's (whether it exists is not told)."""
    webhook = await repository.own(session, webhook_id, principal.user_id)
    if webhook is None:
        raise NotFound("No such webhook.", code="webhook_not_found")
    return webhook


async def update(
    session: AsyncSession,
    settings: Settings,
    sender: WebhookSender,
    webhook: GalleryWebhook,
    body: WebhookUpdate,
) -> GalleryWebhook:
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "events", "enabled"):
        if name in changes and changes[name] is None:
            raise UnprocessableEntity(f"{name} cannot be null.", code="validation_error")
    if "url" in changes:
        await check_webhook_url(changes["url"], settings, sender)
        webhook.url = changes["url"]
    if "events" in changes:
        webhook.events = [EventType(e).value for e in changes["events"]]
    if "enabled" in changes:
        webhook.enabled = changes["enabled"]
        if webhook.enabled:
            webhook.disabled_reason = None
    webhook.updated_at = utcnow()
    await session.flush()
    return webhook


async def send_test(
    session: AsyncSession, webhook: GalleryWebhook
) -> tuple[GalleryLifecycleEvent, GalleryWebhookDelivery]:
    """A ``webhook.test`` event for this endpoint alone, due at once (already fanned
    out: no other endpoint and no EventBridge bus gets it)."""
    now = utcnow()
    event = GalleryLifecycleEvent(
        id=uuid.uuid4(),
        type=EventType.WEBHOOK_TEST.value,
        user_id=webhook.user_id,
        video_id=None,
        data={"webhook_id": str(webhook.id), "message": "A test event from VideoForge."},
        created_at=now,
        fanned_out_at=now,
        bridge_pending=False,
    )
    session.add(event)
    await session.flush()
    delivery = GalleryWebhookDelivery(
        webhook_id=webhook.id,
        event_id=event.id,
        event_type=event.type,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    await session.flush()
    return event, delivery


# ----------------------------------------------------------------------- fan-out
async def fan_out(session: AsyncSession, event: GalleryLifecycleEvent, now: datetime) -> int:
    """A delivery, due now, for each enabled endpoint of the event's owner that wants
    its type (only the owner's: a user receives only events about their own videos)."""
    hooks = [
        w for w in await repository.subscribers(session, event.user_id) if event.type in w.events
    ]
    await repository.add_deliveries(
        session,
        [
            {
                "webhook_id": w.id,
                "event_id": event.id,
                "event_type": event.type,
                "state": DeliveryState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for w in hooks
        ],
    )
    return len(hooks)


# ---------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class _Attempt:
    attempts: int
    created_at: datetime
    webhook_id: uuid.UUID
    url: str
    secret: str
    enabled: bool
    event_id: uuid.UUID
    event_type: str
    body: bytes


def delivery_headers(
    secret: str, event_id: uuid.UUID, event_type: str, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.SIGNATURE_HEADER: signing.signature_header(secret, int(time.time()), body),
        signing.EVENT_ID_HEADER: str(event_id),
        signing.EVENT_TYPE_HEADER: event_type,
    }


async def _claim(infra: Infra, delivery_id: int) -> _Attempt | None:
    now = utcnow()
    lease_until = now + timedelta(seconds=infra.settings.webhook_timeout + LEASE_SLACK_SECONDS)
    async with session_scope(infra.sessions) as session:
        if not await repository.claim(session, delivery_id, now=now, lease_until=lease_until):
            return None
        loaded = await repository.for_attempt(session, delivery_id)
        if loaded is None:
            return None
        delivery, webhook, event = loaded
        await session.refresh(delivery)  # the claim's own attempt count
        return _Attempt(
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            webhook_id=webhook.id,
            url=webhook.url,
            secret=webhook.secret,
            enabled=webhook.enabled,
            event_id=event.id,
            event_type=event.type,
            body=encode(envelope(event.id, event.type, event.created_at, event.data)),
        )


async def _post(
    infra: Infra, sender: WebhookSender, attempt: _Attempt
) -> tuple[int | None, str | None]:
    settings = infra.settings
    try:
        response = await send_once(
            "POST",
            attempt.url,
            content=attempt.body,
            headers=delivery_headers(
                attempt.secret, attempt.event_id, attempt.event_type, attempt.body
            ),
            timeout=settings.webhook_timeout,
            allowed_ports=settings.webhook_allowed_ports,
            resolver=sender.resolver,
            allow_addresses=sender.allow_addresses,
        )
    except (FetchRejected, FetchFailed) as exc:
        return None, f"{exc.code}: {exc.message}"[:1000]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    said = response.body[:200].decode("utf-8", "replace")
    return response.status_code, f"HTTP {response.status_code}: {said}".strip()[:1000]


async def attempt_delivery(
    infra: Infra, delivery_id: int, sender: WebhookSender | None = None
) -> DeliveryState | None:
    """Claim, send and record one delivery; None when it was not due (or was taken)."""
    sender = sender or sender_of(infra)
    attempt = await _claim(infra, delivery_id)
    if attempt is None:
        return None
    if attempt.enabled:
        status, error = await _post(infra, sender, attempt)
    else:
        status, error = None, "endpoint_disabled: the endpoint was disabled."
    done = utcnow()
    if attempt.enabled:
        decision = decide(
            status,
            attempt.attempts,
            (done - attempt.created_at).total_seconds(),
            RetryPolicy.from_settings(infra.settings),
        )
    else:
        decision = Decision(DeliveryState.FAILED)
    values: dict[str, Any] = {
        "state": decision.state,
        "last_status": status,
        "last_error": error,
        "updated_at": done,
        "next_attempt_at": (
            done + timedelta(seconds=decision.retry_in) if decision.retry_in is not None else None
        ),
    }
    if decision.state is DeliveryState.DELIVERED:
        values["delivered_at"] = done
    async with session_scope(infra.sessions) as session:
        recorded = await repository.record(session, delivery_id, attempt.attempts, **values)
        if recorded and decision.disable_endpoint:
            await repository.disable(
                session, attempt.webhook_id, "The receiver answered 410 Gone.", done
            )
    if recorded:
        outcome = "retry" if decision.state is DeliveryState.PENDING else decision.state.value
        WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
    log.info(
        "webhook_attempt",
        delivery_id=delivery_id,
        event_id=str(attempt.event_id),
        event_type=attempt.event_type,
        attempt=attempt.attempts,
        status=status,
        outcome=decision.state.value,
        recorded=recorded,
    )
    return decision.state


async def deliver_due(infra: Infra, sender: WebhookSender | None = None) -> int:
    """Attempt every delivery that is due (a batch); returns how many were due."""
    async with infra.sessions() as session:
        ids = await repository.due(
            session, utcnow(), DELIVERY_BATCH, per_endpoint=PER_ENDPOINT_PER_ROUND
        )
    if not ids:
        return 0
    gate = asyncio.Semaphore(CONCURRENT_ATTEMPTS)

    async def one(delivery_id: int) -> None:
        async with gate:
            try:
                await attempt_delivery(infra, delivery_id, sender)
            except Exception:
                # The lease brings it back; the others go on.
                log.exception("webhook_attempt_failed", delivery_id=delivery_id)

    await asyncio.gather(*(one(i) for i in ids))
    return len(ids)
