"""Reports, account blocks and the moderation log (owned by the gallery; migration 0009)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, utcnow


class ReportReason(StrEnum):
    SPAM = "spam"
    HARASSMENT = "harassment"
    HATE = "hate"
    VIOLENCE = "violence"
    SEXUAL = "sexual"
    COPYRIGHT = "copyright"
    OTHER = "other"


class TargetType(StrEnum):
    VIDEO = "video"
    COMMENT = "comment"


class ReportStatus(StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"  # an admin found nothing wrong
    ACTIONED = "actioned"  # an admin acted on the target (hid it, deleted it)


class BlockScope(StrEnum):
    COMMENT = "comment"  # may not post or edit comments
    UPLOAD = "upload"  # may not upload or import videos


class ModerationActionType(StrEnum):
    DISMISS = "dismiss"
    HIDE_VIDEO = "hide_video"
    UNHIDE_VIDEO = "unhide_video"
    DELETE_COMMENT = "delete_comment"
    BLOCK_USER = "block_user"
    UNBLOCK_USER = "unblock_user"


def _enum(enum: type[StrEnum], name: str) -> SAEnum:
    return SAEnum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class GalleryReport(Base):
    """One user's report of a video or a comment. Removed with its video or comment
    (ON DELETE CASCADE); what was done about it stays in the moderation log."""

    __tablename__ = "gallery_reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    target_type: Mapped[TargetType] = mapped_column(
        _enum(TargetType, "gallery_report_target"), nullable=False
    )
    #: The video's or the comment's id (what reports are grouped by).
    target_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    #: The video reported, or the video of the comment reported.
    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), nullable=False
    )
    comment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gallery_comments.id", ondelete="CASCADE")
    )
    reporter_id: Mapped[str] = mapped_column(String(255), nullable=False)
    reason: Mapped[ReportReason] = mapped_column(
        _enum(ReportReason, "gallery_report_reason"), nullable=False
    )
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ReportStatus] = mapped_column(
        _enum(ReportStatus, "gallery_report_status"), nullable=False, default=ReportStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_gallery_reports_queue", "status", "target_type", "target_id"),
        # Reports of a comment or a video are found (and cascaded) through these.
        Index("ix_gallery_reports_comment", "comment_id"),
        Index("ix_gallery_reports_video", "video_id"),
        # One open report per user per target, whatever two requests race.
        Index(
            "ix_gallery_reports_open_once",
            "target_type",
            "target_id",
            "reporter_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )


class GalleryUserBlock(Base):
    """An account barred from commenting or from uploading, by an administrator."""

    __tablename__ = "gallery_user_blocks"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[BlockScope] = mapped_column(
        _enum(BlockScope, "gallery_block_scope"), primary_key=True
    )
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class GalleryModerationAction(Base):
    """Who did what to which target, when. No foreign keys: the log outlives the
    videos and comments it names."""

    __tablename__ = "gallery_moderation_actions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    actor_id: Mapped[str] = mapped_column(String(255), nullable=False)
    action: Mapped[ModerationActionType] = mapped_column(
        _enum(ModerationActionType, "gallery_moderation_action"), nullable=False
    )
    target_type: Mapped[str] = mapped_column(String(16), nullable=False)
    target_id: Mapped[str] = mapped_column(String(255), nullable=False)
    video_id: Mapped[uuid.UUID | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)

    __table_args__ = (Index("ix_gallery_moderation_actions_created", "created_at", "id"),)
