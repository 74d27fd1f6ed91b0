"""Lifecycle events on an EventBridge bus, on moto: a rule on the bus sends videoforge's
events to an SQS queue, and what arrives there is the envelope webhooks receive."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from sqlalchemy import select

from videoforge.gallery.lifecycle import delivery as lifecycle_delivery
from videoforge.gallery.lifecycle.eventbridge import EventBridgePublisher
from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
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
    return {"EVENTBRIDGE_BUS_NAME": bus["name"], "AWS_ENDPOINT_URL": moto_endpoint}


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
    await lifecycle_delivery.run_once(infra, publisher=publisher)

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
