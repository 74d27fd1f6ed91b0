"""Rating a video: one rating per user per video, changeable, counted exactly."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import service as videos
from videoforge.gallery.models import GalleryVideo
from videoforge.gallery.ratings import repository
from videoforge.gallery.ratings.models import RatingValue
from videoforge.gallery.ratings.schemas import RatingChoice
from videoforge.infra.auth.principal import Principal

#: Attempts at setting a rating while another request of the same user deletes it.
_ATTEMPTS = 5


def _delta(value: RatingValue, sign: int) -> dict[str, int]:
    return (
        {"likes": sign, "dislikes": 0}
        if value is RatingValue.LIKE
        else {"likes": 0, "dislikes": sign}
    )


async def rate(
    session: AsyncSession, video_id: uuid.UUID, principal: Principal, choice: RatingChoice
) -> tuple[GalleryVideo, RatingValue | None]:
    """Set the caller's rating (``none`` removes it); the video with fresh counts."""
    video = await videos.get_visible(session, video_id, principal, keep=True)
    user = principal.user_id
    if choice is RatingChoice.NONE:
        old = await repository.remove(session, video.id, user)
        if old is not None:
            await repository.count(session, video.id, **_delta(old, -1))
        new: RatingValue | None = None
    else:
        new = RatingValue(choice.value)
        for _ in range(_ATTEMPTS):
            if await repository.insert_if_absent(session, video.id, user, new):
                await repository.count(session, video.id, **_delta(new, +1))
                break
            # There is a row: only two values exist, so changing it "from the other
            # value" tells what it was. Nothing changed: it already was ``new``...
            if await repository.switch(session, video.id, user, new):
                sign = 1 if new is RatingValue.LIKE else -1
                await repository.count(session, video.id, likes=sign, dislikes=-sign)
                break
            # ...unless a concurrent "none" deleted it in between: then insert again.
            if await repository.value_of(session, video.id, user) is new:
                break
    await session.flush()
    refreshed = await videos.load_video(session, video.id)
    assert refreshed is not None
    return refreshed, new


async def my_rating(
    session: AsyncSession, video_id: uuid.UUID, principal: Principal | None
) -> str | None:
    """The caller's rating of the video (None: none, or anonymous)."""
    if principal is None:
        return None
    value = await repository.value_of(session, video_id, principal.user_id)
    return None if value is None else value.value


async def my_ratings(
    session: AsyncSession, video_ids: Sequence[uuid.UUID], principal: Principal | None
) -> dict[uuid.UUID, str]:
    """The caller's ratings of these videos (empty for anonymous callers)."""
    if principal is None:
        return {}
    found = await repository.values_of(session, video_ids, principal.user_id)
    return {video_id: value.value for video_id, value in found.items()}
