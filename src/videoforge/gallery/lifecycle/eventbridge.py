"""Lifecycle events to an Amazon EventBridge bus (``EVENTBRIDGE_BUS_NAME``).

Each event is one entry: ``Source`` ``videoforge``, ``DetailType`` the event type and
``Detail`` the envelope (the same JSON webhooks receive, with its ``id`` as the
idempotency key). boto3 is synchronous, so calls run in a thread.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.lifecycle.schemas import encode, envelope
from videoforge.settings import Settings

SOURCE = "videoforge"
#: PutEvents takes at most ten entries per call.
MAX_ENTRIES = 10


def events_client(settings: Settings) -> Any:
    """A boto3 EventBridge client for the configured region and endpoint."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "events",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"}),
    )


class EventBridgePublisher:
    """Puts lifecycle events on one bus."""

    def __init__(self, bus_name: str, client: Any) -> None:
        self.bus_name = bus_name
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> EventBridgePublisher | None:
        if not settings.eventbridge_bus_name:
            return None
        return cls(settings.eventbridge_bus_name, events_client(settings))

    def entry(self, event: GalleryLifecycleEvent) -> dict[str, Any]:
        body = envelope(event.id, event.type, event.created_at, event.data)
        return {
            "Source": SOURCE,
            "DetailType": event.type,
            "Detail": encode(body).decode(),
            "EventBusName": self.bus_name,
            "Time": event.created_at,
        }

    async def put(self, events: Sequence[GalleryLifecycleEvent]) -> list[uuid.UUID]:
        """Publish up to :data:`MAX_ENTRIES` events; returns the ids EventBridge took
        (a failed entry stays to be sent again). Raises botocore's errors when the
        call itself fails."""
        if not events:
            return []
        if len(events) > MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} events per call")
        entries = [self.entry(e) for e in events]
        answer = await asyncio.to_thread(self.client.put_events, Entries=entries)
        results = answer.get("Entries", [])
        return [
            event.id
            for event, result in zip(events, results, strict=False)
            if result.get("EventId") and not result.get("ErrorCode")
        ]
