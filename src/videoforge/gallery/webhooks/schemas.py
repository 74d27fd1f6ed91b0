"""Wire format of webhooks: registration, the endpoint as read back, the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videoforge.gallery.lifecycle.schemas import SUBSCRIBABLE, EventType
from videoforge.gallery.webhooks.models import DeliveryState

WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048)]


def _subscribable(events: list[EventType] | None) -> list[EventType] | None:
    if events is None:
        return None
    unknown = [e for e in events if e not in SUBSCRIBABLE]
    if unknown:
        raise ValueError(f"{unknown[0].value} cannot be subscribed to")
    # Order kept, duplicates dropped: what is stored is what is read back.
    return list(dict.fromkeys(events))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl = Field(description="An http(s) URL on a public address; never redirected.")
    events: list[EventType] = Field(min_length=1, max_length=len(SUBSCRIBABLE))

    _events = field_validator("events")(_subscribable)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    events: list[EventType] | None = Field(None, min_length=1, max_length=len(SUBSCRIBABLE))
    enabled: bool | None = Field(None, description="true re-enables a disabled endpoint.")

    _events = field_validator("events")(_subscribable)


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret (VideoForge-Signature). Shown only in this answer."
    )


class WebhookList(BaseModel):
    items: list[WebhookRead]


class DeliveryRead(BaseModel):
    id: int
    event_id: uuid.UUID = Field(description="The event's id: the idempotency key.")
    event_type: str
    state: DeliveryState
    attempts: int
    last_status: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null at the end."
    )


class WebhookTestSent(BaseModel):
    event_id: uuid.UUID
    delivery_id: int


class WebhookSecret(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="The new signing secret. Shown only in this answer.")
