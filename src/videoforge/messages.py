"""Typed messages that cross service boundaries (the only thing services share besides infra).

- :class:`JobMessage` — Gateway → ``jobs`` queue → Processor: "process this job".
- :class:`JobEvent` — Processor → ``events`` queue → Gallery (and live progress):
  every job state change, with what the gallery needs to update its video.

Both are versioned JSON (``v``); unknown fields are ignored so that a newer sender
does not break an older consumer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class JobStatus(StrEnum):
    PENDING = "PENDING"
    DOWNLOADING = "DOWNLOADING"
    PROCESSING = "PROCESSING"
    UPLOADING = "UPLOADING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATUSES


FINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = SCHEMA_VERSION

    def dumps(self) -> str:
        return self.model_dump_json()


class JobMessage(_Message):
    """Body of a message on the ``jobs`` queue."""

    job_id: uuid.UUID


class Rendition(BaseModel):
    """One rung of the produced ladder."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    quality: str  # "1080p", "720p", ..., "mobile", or "source"
    width: int
    height: int
    bandwidth: int  # bits per second, as in the HLS master playlist
    mp4_key: str
    playlist_key: str  # the HLS variant playlist of this rung


class AudioTrackMessage(BaseModel):
    """One alternate audio rendition (a source audio track)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int
    language: str | None = None
    label: str
    default: bool = False
    playlist_key: str


class TextTrackMessage(BaseModel):
    """One text subtitle track extracted from the source, as WebVTT."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int
    language: str | None = None
    label: str
    default: bool = False
    forced: bool = False
    vtt_key: str
    playlist_key: str  # its single-segment HLS playlist


class ChapterMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    start: float
    end: float
    title: str


#: The media facts a ``COMPLETED`` event carries, by the names both the event and the
#: gallery's video row use (the processor fills them from its probe:
#: :meth:`videoforge.processor.probe.ProbeResult.facts`).
MEDIA_FACTS: Final = ("duration", "width", "height", "video_codec", "audio_codec", "file_size")


def resolution(width: int | None, height: int | None) -> str | None:
    """``"{width}x{height}"`` as shown and stored everywhere, when both are known."""
    return f"{width}x{height}" if width and height else None


class JobEvent(_Message):
    """Body of a message on the ``events`` queue: one job state change.

    ``seq`` increases with every event of a job (it is the processor's event
    counter), so a consumer can drop duplicates and stale, reordered events.
    """

    job_id: uuid.UUID
    video_id: uuid.UUID | None = None
    user_id: str
    seq: int = Field(ge=0)
    status: JobStatus
    progress: int = Field(0, ge=0, le=100)
    at: datetime
    error: str | None = None
    # Filled on COMPLETED:
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    file_size: int | None = None
    thumbnail_key: str | None = None
    #: Stills spread through the video that its owner may choose as the thumbnail instead
    #: (full keys, in time order; absent from older processors).
    thumbnail_candidates: list[str] = Field(default_factory=list)
    preview_key: str | None = None
    hls_master_key: str | None = None
    metadata_key: str | None = None
    # Imports: where the processor stored the downloaded original (the gallery keeps it).
    source_key: str | None = None
    renditions: list[Rendition] = Field(default_factory=list)
    # Media outputs next to the HLS master (full keys; absent from older processors):
    dash_manifest_key: str | None = None
    audio_tracks: list[AudioTrackMessage] = Field(default_factory=list)
    subtitles: list[TextTrackMessage] = Field(default_factory=list)
    chapters: list[ChapterMessage] = Field(default_factory=list)
    chapters_key: str | None = None  # WebVTT chapters track of the container's chapters
    storyboard_key: str | None = None  # WebVTT thumbnails track (sprite sheets beside it)
