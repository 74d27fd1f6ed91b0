"""Reports and moderation on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videoforge.gallery.comments.schemas import clean_comment_text
from videoforge.gallery.models import Visibility
from videoforge.gallery.moderation.models import (
    BlockScope,
    ModerationActionType,
    ReportReason,
    ReportStatus,
    TargetType,
)

NOTE_MAX = 1000


def _note(value: str | None) -> str | None:
    if value is None:
        return None
    return clean_comment_text(value) or None


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportCreate(_Schema):
    reason: ReportReason
    note: str | None = Field(None, max_length=NOTE_MAX)

    @field_validator("note")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return _note(value)


class ReportRead(BaseModel):
    id: uuid.UUID
    target_type: TargetType
    target_id: uuid.UUID
    video_id: uuid.UUID
    comment_id: uuid.UUID | None
    reason: ReportReason
    note: str | None
    status: ReportStatus
    created_at: datetime


class ReportedVideo(BaseModel):
    id: uuid.UUID
    title: str
    user_id: str
    owner_name: str | None
    visibility: Visibility
    hidden: bool


class ReportedComment(BaseModel):
    id: uuid.UUID
    text: str | None
    author_id: str
    author_name: str
    deleted: bool


class ReportGroupRead(BaseModel):
    """The open reports of one target: how many, for which reasons, a few notes, and
    what the target is (the comment's video too, for a comment)."""

    target_type: TargetType
    target_id: uuid.UUID
    video_id: uuid.UUID
    count: int
    reasons: dict[ReportReason, int]
    notes: list[str]
    first_reported_at: datetime
    last_reported_at: datetime
    video: ReportedVideo | None
    comment: ReportedComment | None


class ReportQueue(BaseModel):
    items: list[ReportGroupRead]
    page: int
    per_page: int
    has_more: bool


class ModerationNote(_Schema):
    """An optional note for the moderation log."""

    note: str | None = Field(None, max_length=NOTE_MAX)

    @field_validator("note")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return _note(value)


class ModerationOutcome(BaseModel):
    action: ModerationActionType
    #: Open reports this action closed.
    resolved_reports: int


class BlockCreate(_Schema):
    reason: str | None = Field(None, max_length=NOTE_MAX)

    @field_validator("reason")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return _note(value)


class BlockRead(BaseModel):
    user_id: str
    scope: BlockScope
    reason: str | None
    created_by: str
    created_at: datetime


class BlockList(BaseModel):
    items: list[BlockRead]


class ModerationActionRead(BaseModel):
    id: int
    actor_id: str
    action: ModerationActionType
    target_type: str
    target_id: str
    video_id: uuid.UUID | None
    note: str | None
    created_at: datetime


class ModerationLog(BaseModel):
    """Newest first; ``next_cursor`` (null on the last page) goes back as ``cursor``."""

    items: list[ModerationActionRead]
    next_cursor: str | None
