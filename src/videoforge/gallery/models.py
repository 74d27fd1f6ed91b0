"""The gallery's tables: videos, the jobs seen per video, upload sessions, daily views.

Only the gallery reads or writes these tables. Wire formats live in :mod:`.schemas`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy import (
    Enum as SAEnum,
)
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, TimestampMixin, utcnow


class VideoStatus(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class Visibility(StrEnum):
    PUBLIC = "public"
    UNLISTED = "unlisted"
    PRIVATE = "private"


class CommentPolicy(StrEnum):
    """Who may comment on a video: anyone signed in, nobody, or anyone but held for the
    owner's approval."""

    ON = "on"
    OFF = "off"
    HELD = "held"


class UploadState(StrEnum):
    ISSUED = "issued"  # URL handed out, bytes may or may not have arrived
    CONFIRMED = "confirmed"  # a video owns the object
    REJECTED = "rejected"  # confirm refused the bytes (too large / not a video) and deleted them
    ABORTED = "aborted"  # the client aborted its multipart upload
    SWEPT = "swept"  # never confirmed; the sweeper deleted what was there


def _enum(enum: type[StrEnum], name: str) -> SAEnum:
    # Stored as plain strings (no native PG enum): adding a state is then not a migration.
    return SAEnum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class GalleryVideo(TimestampMixin, Base):
    """A video as the gallery knows it: metadata, visibility, playback keys and counts."""

    __tablename__ = "gallery_videos"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    # The uploader's display name when the video was made (the token's ``name``), shown to
    # everyone; never an e-mail address. Null for videos older than revision 0005.
    owner_name: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility, "gallery_visibility"), nullable=False, default=Visibility.PRIVATE
    )
    status: Mapped[VideoStatus] = mapped_column(
        _enum(VideoStatus, "gallery_video_status"), nullable=False, default=VideoStatus.UPLOADED
    )
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)

    # The original: uploaded (key known at confirm) or imported (key learnt from the
    # processor's COMPLETED event).
    s3_key: Mapped[str | None] = mapped_column(String(1024), unique=True)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(127))
    source_url: Mapped[str | None] = mapped_column(String(2048))

    # What the processor measured and produced.
    duration: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    resolution: Mapped[str | None] = mapped_column(String(32))
    video_codec: Mapped[str | None] = mapped_column(String(64))
    audio_codec: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    #: Every byte the video holds in storage (original, outputs, captions), measured
    #: by listing them (gallery.usage); null until first measured.
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    #: The thumbnail shown (the pipeline's, a chosen candidate or the owner's image).
    thumbnail_key: Mapped[str | None] = mapped_column(String(1024))
    preview_key: Mapped[str | None] = mapped_column(String(1024))
    hls_master_key: Mapped[str | None] = mapped_column(String(1024))
    metadata_key: Mapped[str | None] = mapped_column(String(1024))
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    #: The outputs beside the HLS master, from the COMPLETED event (``MediaOutputs``'s
    #: fields: DASH manifest, audio tracks, extracted subtitles, chapters, storyboard).
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: While the video's job runs: what of it is already watchable (the event's
    #: ``Playable``: the lowest rung's and the audio tracks' growing playlists); null
    #: otherwise. Set by processing events, cleared by every final one and by a new job.
    playable: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Event application state (idempotence): the job whose events we follow now, the
    # last applied sequence number of that job, its last applied status and when.
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    job_status: Mapped[str | None] = mapped_column(String(16))
    last_event_seq: Mapped[int | None] = mapped_column(Integer)
    last_event_at: Mapped[datetime | None] = mapped_column()

    views: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Counters kept in step with gallery_ratings / gallery_comments by ``x = x + 1``
    # updates in the transaction that changes those rows (gallery.ratings, .comments).
    # Server defaults: rows inserted without them (bulk loads, older code) start at 0.
    likes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    dislikes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    #: Visible comments: approved and not deleted, replies included.
    comments_count: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    comment_policy: Mapped[CommentPolicy] = mapped_column(
        _enum(CommentPolicy, "gallery_comment_policy"),
        nullable=False,
        default=CommentPolicy.ON,
        server_default=CommentPolicy.ON.value,
    )
    #: Hidden by a moderator: only its owner and admins can see it (gallery.moderation).
    hidden: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    #: Not public until its owner publishes it (or, with ``publish_when_ready``, until
    #: its processing completes): gallery.publishing.
    draft: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    #: Publish it when its processing completes (the job-event applier does).
    publish_when_ready: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    #: Public from this time on (null: no schedule). Compared with the clock in every
    #: query (gallery.access), so a scheduled video appears the moment its time comes,
    #: without a job that could lag.
    publish_at: Mapped[datetime | None] = mapped_column()
    #: Not public when its owner last chose, so its publication (whenever it comes:
    #: published now, processing done, schedule reached) is still to be announced as a
    #: ``video.published`` lifecycle event (gallery.publishing.announce_due).
    publish_pending: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    #: The stills the pipeline offers as thumbnails (keys, spread through the video).
    thumbnail_candidates: Mapped[list[str] | None] = mapped_column(JSON)
    #: The candidate the owner chose (1-based); null: the pipeline's own thumbnail.
    thumbnail_pick: Mapped[int | None] = mapped_column(Integer)
    #: The image the owner uploaded, re-encoded (gallery.thumbnails); when set, it is
    #: the thumbnail whatever the candidates.
    custom_thumbnail_key: Mapped[str | None] = mapped_column(String(1024))
    # Optimistic concurrency for metadata edits (If-Match / ``version``).
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __table_args__ = (
        Index("ix_gallery_videos_listing", "visibility", "status", "created_at", "id"),
        Index("ix_gallery_videos_owner", "user_id", "created_at", "id"),
        Index("ix_gallery_videos_views", "visibility", "status", "views", "id"),
        # Titles sort case-insensitively, by lower(title) (migration 0013). PostgreSQL
        # indexes the expression; SQLite (small, local catalogues) keeps the plain
        # column index, as SQLAlchemy cannot reflect its expression indexes.
        Index("ix_gallery_videos_title", "visibility", "status", "title", "id").ddl_if(
            dialect="sqlite"
        ),
        Index(
            "ix_gallery_videos_title_lower", "visibility", "status", func.lower(title), "id"
        ).ddl_if(dialect="postgresql"),
        Index("ix_gallery_videos_likes", "visibility", "status", "likes", "id"),
        # The few videos whose publication is still to be announced.
        Index(
            "ix_gallery_videos_publish_pending",
            "publish_at",
            postgresql_where=text("publish_pending"),
            sqlite_where=text("publish_pending"),
        ),
    )


class GalleryVideoJob(Base):
    """Every processing job seen for a video: its outputs are deleted with the video,
    and an event of a job that was already superseded is recognised as stale."""

    __tablename__ = "gallery_video_jobs"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class GalleryUpload(Base):
    """An upload session: issued with its URL, then confirmed, rejected, aborted or swept."""

    __tablename__ = "gallery_uploads"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(127), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    upload_id: Mapped[str | None] = mapped_column(String(1024))
    state: Mapped[UploadState] = mapped_column(
        _enum(UploadState, "gallery_upload_state"), nullable=False, default=UploadState.ISSUED
    )
    video_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_gallery_uploads_state_expires", "state", "expires_at"),)


class GalleryVideoViewsDaily(Base):
    """Views per video per UTC day (for the analytics endpoint)."""

    __tablename__ = "gallery_video_views_daily"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class GalleryPendingDeletion(Base):
    """Objects (or whole prefixes) to delete, written in the same transaction that made
    them unreachable (a video's deletion, an upload sweep). The caller deletes them
    right after its commit and removes the row; a row left behind (storage was down)
    is retried by the sweep with backoff, so a failed delete never orphans bytes."""

    __tablename__ = "gallery_pending_deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(1024), nullable=False)
    is_prefix: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)

    __table_args__ = (Index("ix_gallery_pending_deletions_due", "next_attempt_at"),)


class GalleryViewLog(Base):
    """Counted views not yet added to ``gallery_videos.views`` (and the daily table).

    A view is appended here, committed, before the viewer is told ``counted: true``; the
    flusher moves rows into the totals and deletes them in one transaction. The cache
    only deduplicates, so losing it never loses a count. No foreign key: a view of a
    video deleted meanwhile must not fail the request; the flusher drops it.
    """

    __tablename__ = "gallery_view_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    video_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    views: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
