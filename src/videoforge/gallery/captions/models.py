"""The uploaded captions table (owned by the gallery; migration 0011)."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, TimestampMixin


class GalleryCaption(TimestampMixin, Base):
    """One uploaded caption track: a normalised WebVTT file at ``key``, one per language."""

    __tablename__ = "gallery_captions"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(35), primary_key=True)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    key: Mapped[str] = mapped_column(String(1024), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cues: Mapped[int] = mapped_column(BigInteger, nullable=False)
