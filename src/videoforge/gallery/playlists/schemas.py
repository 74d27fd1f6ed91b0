"""Playlists on the wire (separate from the tables in :mod:`.models`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videoforge.gallery.models import VideoStatus, Visibility
from videoforge.gallery.playlists.models import PlaylistKind

TITLE_MAX = 150
DESCRIPTION_MAX = 5000
#: Videos in one playlist (YouTube's limit too); one more is 409 ``playlist_full``.
ITEMS_MAX = 10_000
#: Playlists one user may keep (Watch later included); one more is 409.
PLAYLISTS_MAX = 200
PAGE_MAX = 100


def _clean_line(value: str) -> str:
    # Titles are one line of text: control characters (newlines included) go.
    return "".join(ch for ch in value if ch.isprintable()).strip()


def _clean_text(value: str) -> str:
    return "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaylistCreate(_Schema):
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    visibility: Visibility = Visibility.PRIVATE

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        cleaned = _clean_line(value)
        if not cleaned:
            raise ValueError("must not be blank")
        return cleaned

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return _clean_text(value)


class PlaylistUpdate(_Schema):
    """Fields to change (only those sent)."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    visibility: Visibility | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = _clean_line(value)
        if not cleaned:
            raise ValueError("must not be blank")
        return cleaned

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)


class PlaylistRead(BaseModel):
    """A playlist. ``video_count`` counts every entry, unavailable ones too (as YouTube
    does); ``thumbnail_url`` is the first video the caller may see. ``contains_video``
    answers ``?video_id=`` on the caller's own listing (null otherwise)."""

    id: uuid.UUID
    kind: PlaylistKind
    user_id: str
    owner_name: str
    title: str
    description: str
    visibility: Visibility
    video_count: int
    thumbnail_url: str | None
    contains_video: bool | None = None
    created_at: datetime
    updated_at: datetime


class PlaylistList(BaseModel):
    items: list[PlaylistRead]


class PlaylistItemAdd(_Schema):
    video_id: uuid.UUID


class PlaylistItemMove(_Schema):
    """The new place of the video, counted from 0 (past the end: last)."""

    position: int = Field(ge=0, le=ITEMS_MAX)


class PlaylistItemMoved(BaseModel):
    """Where the video now is (0-based)."""

    playlist_id: uuid.UUID
    video_id: uuid.UUID
    position: int


class PlaylistVideo(BaseModel):
    """What a playlist shows of a video it may show."""

    id: uuid.UUID
    title: str
    user_id: str
    owner_name: str | None
    duration: float | None
    status: VideoStatus
    visibility: Visibility
    thumbnail_url: str | None


class PlaylistItemRead(BaseModel):
    """One entry, at ``position`` (0-based, in playlist order). ``available: false`` is
    a video the caller may not see (deleted, hidden, private or not playable): nothing
    of it is shown, except its id to the playlist's owner (who added it) so they can
    remove it."""

    position: int
    available: bool
    video_id: uuid.UUID | None = None
    added_at: datetime | None = None
    video: PlaylistVideo | None = None


class PlaylistItemPage(BaseModel):
    """A page of entries in playlist order; ``next_cursor`` is null on the last page."""

    playlist: PlaylistRead
    items: list[PlaylistItemRead]
    next_cursor: str | None


class PlaylistItemAdded(BaseModel):
    """``added: false`` when the video already was in the playlist (nothing changed)."""

    playlist_id: uuid.UUID
    video_id: uuid.UUID
    position: int
    added: bool
    video_count: int
