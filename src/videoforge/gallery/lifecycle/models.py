"""The lifecycle events outbox (owned by the gallery)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, utcnow


class GalleryLifecycleEvent(Base):
    """One lifecycle event, written in the transaction of the change it reports.

    ``id`` is the event's idempotency key on every channel. No foreign key to the video:
    ``video.deleted`` is written in the transaction that deletes it, and still goes out.
    ``fanned_out_at`` is set (conditionally, once) when the delivery loop has created a
    delivery for each matching webhook; ``bridge_pending`` says EventBridge has yet to
    receive it (set at fan-out when a bus is configured).
    """

    __tablename__ = "gallery_lifecycle_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Whose event it is: only this user's webhooks receive it.
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    video_id: Mapped[uuid.UUID | None] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    fanned_out_at: Mapped[datetime | None] = mapped_column()
    bridge_pending: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )

    __table_args__ = (
        Index("ix_gallery_lifecycle_events_fan_out", "fanned_out_at", "created_at"),
        Index("ix_gallery_lifecycle_events_bridge", "bridge_pending", "created_at"),
    )
