"""Lifecycle events on an EventBridge bus, on moto: a rule on the bus sends videoforge's
events to an SQS queue, and what arrives there is the envelope webhooks receive."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from sqlalchemy import select

from videoforge.gallery.lifecycle import delivery as lifecycle_delivery
from videoforge.gallery.lifecycle.eventbridge import EventBridgePublisher
from videoforge.gallery.lifecycle.metrics import EVENTBRIDGE_ENTRIES
from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.webhooks.models import GalleryWebhook, GalleryWebhookDelivery
from videoforge.gallery.webhooks.service import SENDER_KEY, WebhookSender
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra

from .conftest import Users


@pytest.fixture
def bus(moto_endpoint: str, unique: str) -> dict[str, Any]:
    """A bus, and a rule that sends every ``videoforge`` event on it to a queue."""
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"videoforge-events-{unique}"
    events.create_event_bus(Name=name)
    queue_url = sqs.create_queue(QueueName=f"vf-bus-{unique}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name=f"all-{unique}",
        EventBusName=name,
        EventPattern=json.dumps({"source": ["videoforge"]}),
    )
    events.put_targets(
        Rule=f"all-{unique}", EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    return {"name": name, "queue_url": queue_url, "sqs": sqs}


@pytest.fixture
def settings_extra(bus: dict[str, Any], moto_endpoint: str) -> dict[str, Any]:
    return {
        "EVENTBRIDGE_BUS_NAME": bus["name"],
        "AWS_ENDPOINT_URL": moto_endpoint,
        # An attempt that never gets an answer lasts this long (or until stop, then
        # this long again at most).
        "WEBHOOK_TIMEOUT": 8.0,
    }


def _arrived(bus: dict[str, Any], count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(10):
        answer = bus["sqs"].receive_message(
            QueueUrl=bus["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        found += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
        if len(found) >= count:
            break
    return found


async def test_lifecycle_events_arrive_through_a_rule(
    client: httpx.AsyncClient, users: Users, infra: Infra, bus: dict[str, Any]
) -> None:
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "Bridged", "source_url": "https://example.com/a.mp4"},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    video_id = r.json()["id"]
    assert (
        await client.delete(f"/api/gallery/videos/{video_id}", headers=users.owner)
    ).status_code == 204

    publisher = EventBridgePublisher.from_settings(infra.settings)
    assert publisher is not None
    accepted = EVENTBRIDGE_ENTRIES.labels(result="accepted")
    counted = accepted._value.get()
    await lifecycle_delivery.run_once(infra, publisher=publisher)
    assert accepted._value.get() - counted == 2  # videoforge_eventbridge_entries_total

    arrived = sorted(_arrived(bus, 2), key=lambda e: e["detail"]["created_at"])
    assert [(e["source"], e["detail-type"]) for e in arrived] == [
        ("videoforge", "video.created"),
        ("videoforge", "video.deleted"),
    ]
    async with infra.sessions() as session:
        rows = list(
            (
                await session.execute(
                    select(GalleryLifecycleEvent).order_by(GalleryLifecycleEvent.created_at)
                )
            ).scalars()
        )
    for event, row in zip(arrived, rows, strict=True):
        detail = event["detail"]
        assert set(detail) == {"id", "type", "created_at", "data"}
        assert detail["id"] == str(row.id)  # the idempotency key, as webhooks get it
        assert detail["data"]["video_id"] == video_id
        assert not row.bridge_pending  # sent: not sent again
    await lifecycle_delivery.run_once(infra, publisher=publisher)
    assert _arrived(bus, 1) == []


async def test_the_bus_being_down_keeps_events_for_later(
    infra: Infra, users: Users, client: httpx.AsyncClient, bus: dict[str, Any]
) -> None:
    # A real client for an endpoint nobody listens on (port 9 on loopback: discard).
    unreachable = boto3.client(
        "events",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    down = EventBridgePublisher(bus["name"], unreachable)
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "Later", "source_url": "https://example.com/a.mp4"},
        headers=users.owner,
    )
    assert r.status_code == 201
    await lifecycle_delivery.run_once(infra, publisher=down)  # logged, not raised
    async with infra.sessions() as session:
        (row,) = (await session.execute(select(GalleryLifecycleEvent))).scalars()
    assert row.bridge_pending

    up = EventBridgePublisher.from_settings(infra.settings)
    assert up is not None
    await lifecycle_delivery.run_once(infra, publisher=up)
    (arrived,) = _arrived(bus, 1)
    assert arrived["detail"]["id"] == str(row.id)
    assert uuid.UUID(arrived["detail"]["id"]) == row.id


async def test_a_receiver_that_never_answers_does_not_hold_up_the_bus(
    infra: Infra, users: Users, client: httpx.AsyncClient, bus: dict[str, Any]
) -> None:
    """The running loop: while an attempt at the owner's webhook hangs (its address
    lookup never returns), the next events still reach the bus; at stop the attempt is
    cut short and left to its lease."""
    hung = asyncio.Event()

    async def never_answers(host: str, port: int) -> list[str]:
        hung.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    infra.extras[SENDER_KEY] = WebhookSender(resolver=never_answers)
    async with session_scope(infra.sessions) as session:
        session.add(
            GalleryWebhook(
                id=uuid.uuid4(),
                user_id=users.owner_id,
                url="http://stuck.example/in",
                events=["video.created"],
                secret="whsec_stuck",
                enabled=True,
            )
        )

    async def create(title: str) -> None:
        r = await client.post(
            "/api/gallery/videos",
            json={"title": title, "source_url": "https://example.com/a.mp4"},
            headers=users.owner,
        )
        assert r.status_code == 201, r.text

    stop = asyncio.Event()
    loop = asyncio.create_task(lifecycle_delivery.run_lifecycle_delivery(infra, stop))
    try:
        await create("First")
        await asyncio.wait_for(hung.wait(), timeout=10)  # the webhook attempt is stuck
        await create("Second")
        created = time.monotonic()
        titles: set[str] = set()
        while "Second" not in titles and time.monotonic() - created < 4:
            # In a thread: the loop under test runs on this event loop meanwhile.
            arrived = await asyncio.to_thread(_arrived, bus, 1)
            titles |= {e["detail"]["data"]["title"] for e in arrived}
        assert titles == {"First", "Second"}
        # ... well within the attempt's WEBHOOK_TIMEOUT, which is still running.
        assert time.monotonic() - created < infra.settings.webhook_timeout
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=infra.settings.webhook_timeout + 5)
    async with infra.sessions() as session:
        found = (
            await session.execute(
                select(GalleryWebhookDelivery).order_by(GalleryWebhookDelivery.id)
            )
        ).scalars()
    # First's attempt got no answer (its timeout ended it, or the stop cut it short):
    # pending, to be tried again; Second's had not started.
    assert [(d.state, d.attempts, d.last_status) for d in found] == [
        ("pending", 1, None),
        ("pending", 0, None),
    ]
