"""Tables of the processing domain: ``jobs`` and ``media_assets`` (migration ``0003``).

A job is created by the gateway (``PENDING``) and advanced by a processor. Its ``status``
only ever changes through :func:`videoforge.jobs.transitions.transition`, a conditional
update that also bumps ``event_seq`` (the ``seq`` of the job's events).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, TimestampMixin, utcnow
from videoforge.messages import JobStatus

# Column sizes, shared with the migration so the two cannot drift.
USER_ID_LEN = 255
INPUT_SOURCE_LEN = 2048
KEY_LEN = 1024
IDEMPOTENCY_KEY_LEN = 255
CLAIM_TOKEN_LEN = 32


class AssetType(StrEnum):
    VIDEO = "video"
    THUMBNAIL = "thumbnail"
    GIF = "gif"
    METADATA = "metadata"
    HLS = "hls"


def _status_enum() -> Enum:
    # Stored as a plain string (no native PostgreSQL enum) so adding a state is a code
    # change, not a type migration; the values are validated on the way in.
    return Enum(
        JobStatus,
        name="job_status",
        native_enum=False,
        length=16,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


def _asset_type_enum() -> Enum:
    return Enum(
        AssetType,
        name="asset_type",
        native_enum=False,
        length=16,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


class Job(TimestampMixin, Base):
    """One processing job: a source (storage key or http(s) URL) to turn into outputs."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Idempotent creation: one job per (user, Idempotency-Key). NULL keys never collide.
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_id_idempotency_key"),
        # "A user's jobs, newest first" (gateway listing).
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
        # "PENDING older than X" (sweep's re-enqueue) and stale running jobs.
        Index("ix_jobs_status_enqueued_at", "status", "enqueued_at"),
        # A chunked job's parts (migration 0019): one part per (parent, index).
        UniqueConstraint("parent_id", "part_index", name="uq_jobs_parent_id_part_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(USER_ID_LEN), nullable=False)
    video_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    input_source: Mapped[str] = mapped_column(String(INPUT_SOURCE_LEN), nullable=False)
    output_format: Mapped[str] = mapped_column(String(16), nullable=False, default="hls")
    #: The owner's choice for this video: EBU R128 loudness normalisation of its audio
    #: (off for music or recordings whose dynamics must stay as they are).
    loudness_normalization: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )
    status: Mapped[JobStatus] = mapped_column(
        _status_enum(), nullable=False, default=JobStatus.PENDING
    )
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_text: Mapped[str | None] = mapped_column(Text, nullable=True)

    # What processing found out (filled when the job completes).
    metadata_s3_key: Mapped[str | None] = mapped_column(String(KEY_LEN), nullable=True)
    source_key: Mapped[str | None] = mapped_column(String(KEY_LEN), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    original_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    original_bitrate: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    video_codec: Mapped[str | None] = mapped_column(String(32), nullable=True)
    audio_codec: Mapped[str | None] = mapped_column(String(32), nullable=True)

    # Bookkeeping of the at-least-once machinery.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    event_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_LEN), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(CLAIM_TOKEN_LEN), nullable=True)
    # The queue message the current claim came from: a redelivery of that same message
    # (its owner is alive but lost the receipt) is told apart from a duplicate message.
    claim_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    # A long video is encoded as parts (jobs/parts.py, migration 0019). On a part: its
    # parent, its number and the span of the whole video's timeline it encodes (seconds,
    # ``part_end`` null for the last). On a parent: how many parts it has and how many
    # are done (null/0 for every job that is not chunked).
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True
    )
    part_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    part_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    part_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    parts_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parts_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status} {self.progress}%>"


class MediaAsset(Base):
    """One stored output of a job. Unique per (job, key) so a retry overwrites the row."""

    __tablename__ = "media_assets"
    __table_args__ = (UniqueConstraint("job_id", "s3_key", name="uq_media_assets_job_id_s3_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    asset_type: Mapped[AssetType] = mapped_column(_asset_type_enum(), nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    s3_key: Mapped[str] = mapped_column(String(KEY_LEN), nullable=False)
    # Null: URLs are signed on demand, and a stored one would expire (only a public
    # bucket's URL could live here).
    s3_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    file_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quality: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
