"""The wire form of a lifecycle event: one stable JSON envelope on every channel."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class EventType(StrEnum):
    VIDEO_CREATED = "video.created"
    VIDEO_READY = "video.ready"
    VIDEO_FAILED = "video.failed"
    #: A video held back (draft, publish when ready, scheduled) became public.
    VIDEO_PUBLISHED = "video.published"
    VIDEO_DELETED = "video.deleted"
    JOB_PROGRESS = "job.progress"
    #: Sent only by ``POST /api/gallery/webhooks/{id}/test``, to that endpoint only.
    WEBHOOK_TEST = "webhook.test"


#: What a webhook may subscribe to (``webhook.test`` reaches it whatever it chose).
SUBSCRIBABLE = frozenset(t for t in EventType if t is not EventType.WEBHOOK_TEST)


class Envelope(BaseModel):
    """``{"id", "type", "created_at", "data"}``; ``id`` is the idempotency key: the same
    event delivered twice (at least once) carries the same id."""

    id: uuid.UUID = Field(description="The event's id; the same on every retry and channel.")
    type: EventType
    created_at: datetime
    data: dict[str, Any]


def envelope(
    event_id: uuid.UUID, event_type: str, created_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """The envelope as plain JSON values."""
    return {
        "id": str(event_id),
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def encode(body: dict[str, Any]) -> bytes:
    """The bytes that are sent (and signed): compact, keys in a stable order."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
