"""Wire formats of captions, chapters and the other text and audio tracks of playback."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class CaptionSource(StrEnum):
    UPLOADED = "uploaded"  # by the video's owner, through this API
    EXTRACTED = "extracted"  # a text subtitle track of the uploaded file


class CaptionRead(BaseModel):
    """One caption track. ``url`` is a short-lived WebVTT URL (null in listings for
    videos that are not ready)."""

    language: str | None
    label: str
    source: CaptionSource
    default: bool = False
    forced: bool = False
    url: str | None = None
    cues: int | None = Field(None, description="Number of cues (uploaded tracks).")


class CaptionList(BaseModel):
    items: list[CaptionRead]


class ChapterRead(BaseModel):
    start: float = Field(description="Seconds from the start.")
    end: float
    title: str


class AudioTrackRead(BaseModel):
    """An alternate audio rendition (HLS ``EXT-X-MEDIA TYPE=AUDIO`` / a DASH audio set)."""

    language: str | None
    label: str
    default: bool
