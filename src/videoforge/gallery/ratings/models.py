"""The ratings table (owned by the gallery; migration 0009)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum as SAEnum
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, utcnow


class RatingValue(StrEnum):
    LIKE = "like"
    DISLIKE = "dislike"


class GalleryRating(Base):
    """One user's rating of one video (no row: no rating)."""

    __tablename__ = "gallery_ratings"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[RatingValue] = mapped_column(
        SAEnum(
            RatingValue,
            name="gallery_rating_value",
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
