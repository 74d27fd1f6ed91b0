"""The SQL of ratings and of the like/dislike counters on videos.

Every change of a rating row is a statement that reports whether it changed the row
(an insert that did nothing on conflict, an update from the other value, a delete that
found the row), and the counters move only for a change that happened, by ``likes =
likes + 1`` in the same transaction. Two requests racing on one row cannot both see
the same old value: the second waits on the row lock and re-reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.models import GalleryVideo
from videoforge.gallery.ratings.models import GalleryRating, RatingValue
from videoforge.infra.db import utcnow


def _rowcount(result: Any) -> int:
    cursor: CursorResult[Any] = result
    return int(cursor.rowcount)


async def insert_if_absent(
    session: AsyncSession, video_id: uuid.UUID, user_id: str, value: RatingValue
) -> bool:
    """Insert the rating unless the user has one; whether it was inserted."""
    now = utcnow()
    values = {
        "video_id": video_id,
        "user_id": user_id,
        "value": value,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(GalleryRating)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["video_id", "user_id"])
    )
    return _rowcount(await session.execute(stmt)) == 1


async def switch(
    session: AsyncSession, video_id: uuid.UUID, user_id: str, value: RatingValue
) -> bool:
    """Change an existing rating to ``value`` from the other value; whether it changed."""
    result = await session.execute(
        update(GalleryRating)
        .where(
            GalleryRating.video_id == video_id,
            GalleryRating.user_id == user_id,
            GalleryRating.value != value,
        )
        .values(value=value, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def remove(session: AsyncSession, video_id: uuid.UUID, user_id: str) -> RatingValue | None:
    """Delete the user's rating; the value it had (None when there was none)."""
    result = await session.execute(
        delete(GalleryRating)
        .where(GalleryRating.video_id == video_id, GalleryRating.user_id == user_id)
        .returning(GalleryRating.value)
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    return None if row is None else RatingValue(row[0])


async def value_of(session: AsyncSession, video_id: uuid.UUID, user_id: str) -> RatingValue | None:
    stmt = select(GalleryRating.value).where(
        GalleryRating.video_id == video_id, GalleryRating.user_id == user_id
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    return None if found is None else RatingValue(found)


async def values_of(
    session: AsyncSession, video_ids: Sequence[uuid.UUID], user_id: str
) -> dict[uuid.UUID, RatingValue]:
    """The user's ratings of these videos (one query for a listing page)."""
    if not video_ids:
        return {}
    rows = await session.execute(
        select(GalleryRating.video_id, GalleryRating.value).where(
            GalleryRating.user_id == user_id, GalleryRating.video_id.in_(list(video_ids))
        )
    )
    return {video_id: RatingValue(value) for video_id, value in rows}


async def count(session: AsyncSession, video_id: uuid.UUID, *, likes: int, dislikes: int) -> None:
    """Move the video's counters by these amounts."""
    if not likes and not dislikes:
        return
    await session.execute(
        update(GalleryVideo)
        .where(GalleryVideo.id == video_id)
        .values(likes=GalleryVideo.likes + likes, dislikes=GalleryVideo.dislikes + dislikes)
        .execution_options(synchronize_session=False)
    )
