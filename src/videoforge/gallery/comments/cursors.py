"""Keyset cursors of comment lists: the last row of a page (its time and id) and the
list it was made for, so a cursor of one sort or thread is refused by another."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime

from videoforge.gallery.comments.models import GalleryComment
from videoforge.gallery.comments.repository import After
from videoforge.infra.errors import BadRequest


def encode_cursor(kind: str, comment: GalleryComment) -> str:
    raw = json.dumps(
        {"k": kind, "t": comment.created_at.isoformat(), "i": comment.id.hex},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> After:
    """The last row of the previous page; 400 ``invalid_cursor`` for anything else
    (including a cursor made for another sort or list)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError("another list")
        created = datetime.fromisoformat(data["t"])
        if created.tzinfo is None:
            raise ValueError("naive")
        # In UTC now: an offset that moves the time out of range fails here, not in SQL.
        return After(created_at=created.astimezone(UTC), id=uuid.UUID(hex=data["i"]))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, binascii.Error):
        raise BadRequest(
            "The cursor is invalid (or was made for another list or sort).",
            code="invalid_cursor",
        ) from None
