"""Comments on the wire (separate from the table in :mod:`.models`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videoforge.gallery.comments.models import CommentStatus, HoldReason
from videoforge.gallery.models import CommentPolicy

#: Characters in a comment (after control characters are dropped).
TEXT_MAX = 2000
PAGE_MAX = 100


def clean_comment_text(value: str) -> str:
    """Drop control characters (newlines and tabs stay) and surrounding blanks.

    Comments are plain text and stay so: nothing here is HTML, and clients render the
    text as text (the web client autolinks http(s) URLs with DOM nodes, never markup).
    """
    return "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommentSort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


class CommentListStatus(StrEnum):
    """``visible``: what the caller may see (held ones of their own, or all held ones
    for the video's owner); ``held``: the owner's approval queue."""

    VISIBLE = "visible"
    HELD = "held"


class CommentCreate(_Schema):
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    #: Reply to this comment; a reply to a reply joins the top-level comment's thread.
    parent_id: uuid.UUID | None = None

    @field_validator("text")
    @classmethod
    def _clean(cls, value: str) -> str:
        cleaned = clean_comment_text(value)
        if not cleaned:
            raise ValueError("must not be blank")
        return cleaned


class CommentUpdate(_Schema):
    text: str = Field(min_length=1, max_length=TEXT_MAX)

    @field_validator("text")
    @classmethod
    def _clean(cls, value: str) -> str:
        cleaned = clean_comment_text(value)
        if not cleaned:
            raise ValueError("must not be blank")
        return cleaned


class CommentRead(BaseModel):
    """One comment. A deleted one that has replies stays as ``deleted: true`` with
    ``text`` null ("comment deleted"). ``status`` is ``held`` only for its author and
    the video's owner (nobody else sees held comments)."""

    id: uuid.UUID
    video_id: uuid.UUID
    parent_id: uuid.UUID | None
    author_id: str
    author_name: str
    text: str | None
    status: CommentStatus
    hold_reason: HoldReason | None = None
    deleted: bool
    pinned: bool
    #: The video's owner wrote it (shown as the creator's comment).
    by_owner: bool
    replies_count: int
    created_at: datetime
    edited_at: datetime | None


class CommentPage(BaseModel):
    """Top-level comments (the pinned one first on the first page), or replies.
    ``next_cursor`` is null on the last page; pass it back as ``cursor``."""

    items: list[CommentRead]
    next_cursor: str | None
    comment_policy: CommentPolicy
    comments_count: int
