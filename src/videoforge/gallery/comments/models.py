"""The comments table (owned by the gallery; migration 0009)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy import Enum as SAEnum
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, TimestampMixin


class CommentStatus(StrEnum):
    APPROVED = "approved"
    HELD = "held"  # waiting for the video owner's approval
    REJECTED = "rejected"  # the owner refused it: shown to nobody


class HoldReason(StrEnum):
    POLICY = "policy"  # the video holds every comment
    BLOCKED_WORDS = "blocked_words"  # it contains one of COMMENT_BLOCKED_WORDS


def _enum(enum: type[StrEnum], name: str) -> SAEnum:
    # Plain strings, as the other gallery enums: a new state is not a migration.
    return SAEnum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class GalleryComment(TimestampMixin, Base):
    """A comment, or a reply to one (``parent_id``: always a top-level comment).

    A deleted comment that has replies stays as a placeholder (``deleted``, ``text``
    null) so its thread keeps its place; without replies the row goes.
    """

    __tablename__ = "gallery_comments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), nullable=False
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gallery_comments.id", ondelete="CASCADE")
    )
    author_id: Mapped[str] = mapped_column(String(255), nullable=False)
    #: The author's display name when they wrote it (never an e-mail address).
    author_name: Mapped[str] = mapped_column(String(100), nullable=False)
    text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[CommentStatus] = mapped_column(
        _enum(CommentStatus, "gallery_comment_status"), nullable=False
    )
    hold_reason: Mapped[HoldReason | None] = mapped_column(
        _enum(HoldReason, "gallery_comment_hold_reason")
    )
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: Visible (approved, not deleted) replies; kept by ``+ 1`` / ``- 1`` updates.
    replies_count: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), nullable=False, default=0
    )
    edited_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        # Top-level comments of a video in time order: every listing page is a range
        # of this index (keyset cursors), however many comments the video has.
        Index(
            "ix_gallery_comments_top",
            "video_id",
            "created_at",
            "id",
            postgresql_where=sql_text("parent_id IS NULL"),
            sqlite_where=sql_text("parent_id IS NULL"),
        ),
        Index("ix_gallery_comments_replies", "parent_id", "created_at", "id"),
        # The owner's approval queue (few rows among many).
        Index("ix_gallery_comments_status", "video_id", "status", "created_at", "id"),
        # At most one pinned comment per video, whatever two requests race.
        Index(
            "ix_gallery_comments_pinned",
            "video_id",
            unique=True,
            postgresql_where=sql_text("pinned"),
            sqlite_where=sql_text("pinned"),
        ),
    )
