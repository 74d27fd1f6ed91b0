"""The owner's choice of thumbnail: a candidate the pipeline offered, or an image.

``thumbnail_key`` stays the one column every reader uses (listings, stream URLs,
embeds); these functions set it, and remember the choice (``thumbnail_pick``,
``custom_thumbnail_key``) so that a re-process keeps it (gallery.events). Choosing does
not bump the video's ``version``: it cannot conflict with an edit of its text.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import deletions
from videoforge.gallery import service as videos
from videoforge.gallery.access import ensure_owner
from videoforge.gallery.models import GalleryVideo
from videoforge.gallery.thumbnails import images
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import utcnow
from videoforge.infra.errors import Conflict, UnprocessableEntity
from videoforge.infra.storage.base import Storage
from videoforge.infra.storage.keys import new_thumbnail_key

JPEG_CONTENT_TYPE = "image/jpeg"


async def _set(
    session: AsyncSession, video: GalleryVideo, *, shown: str, pick: int | None, custom: str | None
) -> list[int]:
    """Show ``shown``; the owner's previous image (if replaced) is deleted after the commit."""
    await session.execute(
        update(GalleryVideo)
        .where(GalleryVideo.id == video.id)
        .values(
            thumbnail_key=shown,
            thumbnail_pick=pick,
            custom_thumbnail_key=custom,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    old = video.custom_thumbnail_key
    if old is None or old == custom:
        return []
    return await deletions.schedule(session, reason="thumbnail_replaced", keys=[old])


async def choose_candidate(
    session: AsyncSession, video_id: uuid.UUID, principal: Principal | None, number: int
) -> tuple[GalleryVideo, list[int]]:
    """Show candidate ``number`` (1-based) as the thumbnail (owner only)."""
    video = ensure_owner(await videos.load_video(session, video_id), principal)
    candidates = video.thumbnail_candidates or []
    if not candidates:
        raise Conflict(
            "The thumbnail choices are made during processing; try again when it is done.",
            code="thumbnail_candidates_not_ready",
        )
    if number > len(candidates):
        raise UnprocessableEntity(
            f"There are {len(candidates)} thumbnail choices; pick one of 1 to {len(candidates)}.",
            code="no_such_thumbnail_candidate",
        )
    pending = await _set(session, video, shown=candidates[number - 1], pick=number, custom=None)
    refreshed = await videos.load_video(session, video.id)
    assert refreshed is not None
    return refreshed, pending


async def upload_image(
    session: AsyncSession,
    storage: Storage,
    video_id: uuid.UUID,
    principal: Principal | None,
    data: bytes,
) -> tuple[GalleryVideo, list[int]]:
    """Re-encode ``data`` (gallery.thumbnails.images), store it under the video's own
    prefix and show it (owner only). The object is written before the row points at
    it: a failed commit leaves an unused image that goes with the video's prefix."""
    video = ensure_owner(await videos.load_video(session, video_id), principal)
    thumbnail = await asyncio.to_thread(images.reencode, data)
    key = new_thumbnail_key(video.id)
    await storage.put_bytes(key, thumbnail.data, content_type=JPEG_CONTENT_TYPE)
    pending = await _set(session, video, shown=key, pick=None, custom=key)
    refreshed = await videos.load_video(session, video.id)
    assert refreshed is not None
    return refreshed, pending
