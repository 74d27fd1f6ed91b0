"""The SQL of the comments table (and of the comment counters on videos).

Counters change by ``x = x + n`` in the transaction that changes the comment, and only
when a conditional update really changed its row, so racing requests never miscount.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    false,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.comments.models import CommentStatus, GalleryComment, HoldReason
from videoforge.gallery.models import GalleryVideo
from videoforge.infra.db import utcnow


@dataclass(frozen=True)
class Viewer:
    """Whose eyes a listing is for: held comments show to their author and to the
    video's owner (and admins), never to anyone else."""

    user_id: str | None
    sees_all_held: bool


@dataclass(frozen=True)
class After:
    """The last row of the previous page (a keyset cursor)."""

    created_at: datetime
    id: uuid.UUID


def _rowcount(result: Any) -> int:
    cursor: CursorResult[Any] = result
    return int(cursor.rowcount)


async def get(
    session: AsyncSession, comment_id: uuid.UUID, *, lock: bool = False
) -> GalleryComment | None:
    """The comment (fresh from the database). ``lock`` holds it against concurrent
    changes (FOR UPDATE); SQLite needs none, its writers take turns."""
    stmt = select(GalleryComment).where(GalleryComment.id == comment_id)
    if lock:
        stmt = stmt.with_for_update()
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(session: AsyncSession, comment: GalleryComment) -> None:
    session.add(comment)
    await session.flush()


def _visible_to(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.sees_all_held:
        return GalleryComment.status.in_([CommentStatus.APPROVED, CommentStatus.HELD])
    if viewer.user_id is None:
        return GalleryComment.status == CommentStatus.APPROVED
    return or_(
        GalleryComment.status == CommentStatus.APPROVED,
        and_(
            GalleryComment.status == CommentStatus.HELD, GalleryComment.author_id == viewer.user_id
        ),
    )


def _keyset(after: After | None, descending: bool) -> list[ColumnElement[bool]]:
    if after is None:
        return []
    # A row-value comparison: an index range on (…, created_at, id), not an OR.
    keys = tuple_(GalleryComment.created_at, GalleryComment.id)
    bound = tuple_(
        bindparam(None, after.created_at, type_=GalleryComment.created_at.type),
        bindparam(None, after.id, type_=GalleryComment.id.type),
    )
    return [keys < bound if descending else keys > bound]


def _order(descending: bool) -> tuple[Any, Any]:
    if descending:
        return GalleryComment.created_at.desc(), GalleryComment.id.desc()
    return GalleryComment.created_at.asc(), GalleryComment.id.asc()


def top_level_stmt(
    video_id: uuid.UUID, viewer: Viewer, *, descending: bool, after: After | None = None
) -> Select[GalleryComment]:
    """Top-level comments in time order, the pinned one left out (it is shown first):
    a range of ``ix_gallery_comments_top`` (its ``parent_id IS NULL`` is in the query)."""
    return (
        select(GalleryComment)
        .where(
            GalleryComment.video_id == video_id,
            GalleryComment.parent_id.is_(None),
            GalleryComment.pinned == false(),
            _visible_to(viewer),
            *_keyset(after, descending),
        )
        .order_by(*_order(descending))
    )


async def top_level_page(
    session: AsyncSession,
    video_id: uuid.UUID,
    viewer: Viewer,
    *,
    descending: bool,
    after: After | None,
    limit: int,
) -> list[GalleryComment]:
    stmt = top_level_stmt(video_id, viewer, descending=descending, after=after).limit(limit)
    return list((await session.execute(stmt)).scalars())


def pinned_stmt(video_id: uuid.UUID, viewer: Viewer) -> Select[GalleryComment]:
    # "pinned = true", not "pinned IS true": PostgreSQL reduces the former to the
    # predicate of ix_gallery_comments_pinned (WHERE pinned) and reads that one row;
    # the latter matches no index and walks every comment of the video (45 ms at
    # 100,000 comments, bench/comments.py).
    return select(GalleryComment).where(
        GalleryComment.video_id == video_id,
        GalleryComment.pinned == true(),
        _visible_to(viewer),
    )


async def pinned(
    session: AsyncSession, video_id: uuid.UUID, viewer: Viewer
) -> GalleryComment | None:
    return (await session.execute(pinned_stmt(video_id, viewer))).scalars().first()


async def replies_page(
    session: AsyncSession,
    parent_id: uuid.UUID,
    viewer: Viewer,
    *,
    after: After | None,
    limit: int,
) -> list[GalleryComment]:
    """Replies oldest first (a conversation reads top to bottom)."""
    stmt = (
        select(GalleryComment)
        .where(
            GalleryComment.parent_id == parent_id,
            _visible_to(viewer),
            *_keyset(after, False),
        )
        .order_by(*_order(False))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def held_page(
    session: AsyncSession,
    video_id: uuid.UUID,
    *,
    descending: bool,
    after: After | None,
    limit: int,
) -> list[GalleryComment]:
    """The approval queue: held comments and replies of the video."""
    stmt = (
        select(GalleryComment)
        .where(
            GalleryComment.video_id == video_id,
            GalleryComment.status == CommentStatus.HELD,
            *_keyset(after, descending),
        )
        .order_by(*_order(descending))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def has_replies(session: AsyncSession, comment_id: uuid.UUID) -> bool:
    """Whether any reply row exists (held ones too: they may still be approved)."""
    stmt = select(exists().where(GalleryComment.parent_id == comment_id))
    return bool((await session.execute(stmt)).scalar())


async def count_visible(session: AsyncSession, comment: GalleryComment, delta: int) -> None:
    """Add ``delta`` to the counters a visible comment is part of: its thread's
    ``replies_count`` (for a reply) and its video's ``comments_count``.

    Always in this order, after the comment rows were locked: every path locks comment
    rows before the video row, so two requests never wait on each other in a circle.
    """
    if comment.parent_id is not None:
        await session.execute(
            update(GalleryComment)
            .where(GalleryComment.id == comment.parent_id)
            .values(replies_count=GalleryComment.replies_count + delta)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(GalleryVideo)
        .where(GalleryVideo.id == comment.video_id)
        .values(comments_count=GalleryVideo.comments_count + delta)
        .execution_options(synchronize_session=False)
    )


async def move_status(
    session: AsyncSession,
    comment_id: uuid.UUID,
    *,
    expected: Sequence[CommentStatus],
    new: CommentStatus,
    hold_reason: HoldReason | None = None,
) -> bool:
    """Change the status only from an expected one; whether this call changed it."""
    result = await session.execute(
        update(GalleryComment)
        .where(
            GalleryComment.id == comment_id,
            GalleryComment.status.in_(list(expected)),
            GalleryComment.deleted.is_(False),
        )
        .values(status=new, hold_reason=hold_reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def set_text(
    session: AsyncSession,
    comment_id: uuid.UUID,
    text: str,
    *,
    status: CommentStatus,
    hold_reason: HoldReason | None,
) -> bool:
    """Replace the text of a comment that is not deleted (and set its status)."""
    now = utcnow()
    result = await session.execute(
        update(GalleryComment)
        .where(GalleryComment.id == comment_id, GalleryComment.deleted.is_(False))
        .values(text=text, status=status, hold_reason=hold_reason, edited_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def mark_deleted(session: AsyncSession, comment_id: uuid.UUID) -> bool:
    """Leave a placeholder ("comment deleted"): no text, not pinned."""
    result = await session.execute(
        update(GalleryComment)
        .where(GalleryComment.id == comment_id, GalleryComment.deleted.is_(False))
        .values(text=None, deleted=True, pinned=False, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def remove(session: AsyncSession, comment_id: uuid.UUID) -> bool:
    """Delete the row (its replies and reports go with it: ON DELETE CASCADE)."""
    result = await session.execute(
        delete(GalleryComment)
        .where(GalleryComment.id == comment_id)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def unpin_all(session: AsyncSession, video_id: uuid.UUID) -> None:
    await session.execute(
        update(GalleryComment)
        .where(GalleryComment.video_id == video_id, GalleryComment.pinned.is_(True))
        .values(pinned=False)
        .execution_options(synchronize_session=False)
    )


async def set_pinned(session: AsyncSession, comment_id: uuid.UUID, value: bool) -> bool:
    result = await session.execute(
        update(GalleryComment)
        .where(GalleryComment.id == comment_id, GalleryComment.deleted.is_(False))
        .values(pinned=value)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1
