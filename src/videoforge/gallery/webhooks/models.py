"""Tables of outgoing webhooks: the endpoints users registered and one delivery per
(endpoint, lifecycle event)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.infra.db import Base, TimestampMixin, utcnow


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or being attempted under a lease)
    DELIVERED = "delivered"  # a 2xx came back
    FAILED = "failed"  # the retry budget ran out, or the endpoint is gone (410)


class GalleryWebhook(TimestampMixin, Base):
    """An endpoint a user registered for some event types of their own videos."""

    __tablename__ = "gallery_webhooks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    #: The HMAC key deliveries are signed with; shown to the user once, at creation.
    secret: Mapped[str] = mapped_column(String(128), nullable=False)
    enabled: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )
    #: Why the gallery disabled it (e.g. the receiver answered 410 Gone); null otherwise.
    disabled_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_gallery_webhooks_user", "user_id", "created_at"),)


class GalleryWebhookDelivery(Base):
    """One event for one endpoint: attempts, the last outcome and when to try again."""

    __tablename__ = "gallery_webhook_deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(GalleryLifecycleEvent.id, ondelete="CASCADE"), nullable=False
    )
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    state: Mapped[DeliveryState] = mapped_column(
        SAEnum(
            DeliveryState,
            name="gallery_delivery_state",
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
        default=DeliveryState.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: When the next attempt is due; while one runs, the end of its lease (a delivery
    #: whose process died comes due again then). Null once delivered or failed.
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_gallery_webhook_deliveries_event"),
        Index("ix_gallery_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_gallery_webhook_deliveries_log", "webhook_id", "created_at"),
        Index("ix_gallery_webhook_deliveries_event", "event_id"),
    )
