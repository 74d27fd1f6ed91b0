"""Wire format of the job domain (separate from the tables in :mod:`.models`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from videoforge.jobs.failures import is_retryable
from videoforge.jobs.models import AssetType
from videoforge.messages import JobStatus


class MediaAssetRead(BaseModel):
    """One stored output of a job (URLs are signed on demand by whoever serves it)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_id: uuid.UUID
    asset_type: AssetType
    format: str
    s3_key: str
    s3_url: str | None = None
    file_size: int | None = None
    quality: str | None = None
    created_at: datetime


class JobRead(BaseModel):
    """A job as its owner sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: str
    video_id: uuid.UUID | None = None
    input_source: str
    output_format: str
    loudness_normalization: bool = True
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    error_code: str | None = None
    error_text: str | None = None
    metadata_s3_key: str | None = None
    source_key: str | None = None
    duration: float | None = None
    original_size: int | None = None
    original_bitrate: int | None = None
    resolution: str | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    attempts: int
    event_seq: int
    cancel_requested: bool
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    #: Seconds until the job is done: measured workers' speed, the job's own progress
    #: and, while it waits, the work queued ahead of it (0 once completed; None when
    #: it failed, was cancelled, or nothing is known yet).
    eta_seconds: float | None = None
    #: 1 for the next job a worker takes; None unless the job is waiting in the queue.
    queue_position: int | None = None
    assets: list[MediaAssetRead] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def retryable(self) -> bool:
        """True when ``POST /api/jobs/{id}/retry`` can help: failed for a reason that
        may pass, or cancelled (never for media or a link that was refused)."""
        return is_retryable(self.status, self.error_code)


class JobPage(BaseModel):
    """One page of a user's jobs, newest first; pass ``next_cursor`` to get the next."""

    items: list[JobRead]
    next_cursor: str | None = None
