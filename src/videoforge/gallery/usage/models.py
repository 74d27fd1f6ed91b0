"""The per-user quota override set by admins (a video's own bytes are a column of
``gallery_videos``: ``storage_bytes``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, utcnow


class GalleryUserQuota(Base):
    """An admin's quota for one user, in place of ``STORAGE_QUOTA_BYTES``. No row: the
    instance default applies."""

    __tablename__ = "gallery_user_quotas"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    quota_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(255), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
