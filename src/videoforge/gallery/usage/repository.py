"""SQL of storage accounting: per-video bytes, per-user sums, quota rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.comments.models import GalleryComment
from videoforge.gallery.models import GalleryUpload, GalleryVideo, GalleryVideoJob, UploadState
from videoforge.gallery.ratings.models import GalleryRating
from videoforge.gallery.usage.models import GalleryUserQuota
from videoforge.infra.db import utcnow
from videoforge.infra.storage.keys import video_prefixes

#: A video's bytes before it is first measured: what confirm stored (or nothing yet).
_BYTES = func.coalesce(GalleryVideo.storage_bytes, GalleryVideo.file_size, 0)


@dataclass(frozen=True)
class VideoObjects:
    """What one video holds in storage: single keys and whole prefixes."""

    video_id: uuid.UUID
    keys: list[str]
    prefixes: list[str]


async def video_objects(session: AsyncSession, video_id: uuid.UUID) -> VideoObjects | None:
    video = await session.get(GalleryVideo, video_id, populate_existing=True)
    if video is None:
        return None
    jobs = set(
        (
            await session.execute(
                select(GalleryVideoJob.job_id).where(GalleryVideoJob.video_id == video_id)
            )
        ).scalars()
    )
    if video.job_id is not None:
        jobs.add(video.job_id)
    # The same places a video's deletion removes (service.delete_video): every byte
    # that goes when the video goes.
    return VideoObjects(
        video_id, [video.s3_key] if video.s3_key else [], video_prefixes(video_id, jobs)
    )


async def set_video_bytes(session: AsyncSession, video_id: uuid.UUID, size: int) -> None:
    await session.execute(
        update(GalleryVideo)
        .where(GalleryVideo.id == video_id)
        .values(storage_bytes=size)
        .execution_options(synchronize_session=False)
    )


async def used_by(session: AsyncSession, user_id: str) -> tuple[int, int]:
    """(bytes, videos) of one user."""
    row = (
        await session.execute(
            select(func.coalesce(func.sum(_BYTES), 0), func.count(GalleryVideo.id)).where(
                GalleryVideo.user_id == user_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def reserved_by(session: AsyncSession, user_id: str) -> int:
    """Bytes of uploads handed out to the user, not confirmed yet and still usable."""
    total = (
        await session.execute(
            select(func.coalesce(func.sum(GalleryUpload.size), 0)).where(
                GalleryUpload.user_id == user_id,
                GalleryUpload.state == UploadState.ISSUED,
                GalleryUpload.expires_at > utcnow(),
            )
        )
    ).scalar_one()
    return int(total)


async def quota_of(session: AsyncSession, user_id: str) -> int | None:
    row = await session.get(GalleryUserQuota, user_id, populate_existing=True)
    return None if row is None else row.quota_bytes


async def set_quota(session: AsyncSession, user_id: str, quota: int | None, admin: str) -> None:
    await session.execute(delete(GalleryUserQuota).where(GalleryUserQuota.user_id == user_id))
    if quota is not None:
        session.add(
            GalleryUserQuota(
                user_id=user_id, quota_bytes=quota, updated_by=admin, updated_at=utcnow()
            )
        )
    await session.flush()


async def usage_rows(
    session: AsyncSession, *, limit: int, offset: int
) -> list[tuple[str, int, int, int | None, str | None]]:
    """(user, bytes, videos, own quota, a public name) for every user with videos or a
    quota, the largest first. (Per user, not per video: a few thousand rows even on a
    big site.)"""
    sums = await session.execute(
        select(
            GalleryVideo.user_id,
            func.sum(_BYTES),
            func.count(GalleryVideo.id),
            func.max(GalleryVideo.owner_name),
        ).group_by(GalleryVideo.user_id)
    )
    own = await session.execute(select(GalleryUserQuota.user_id, GalleryUserQuota.quota_bytes))
    quotas = {str(user): int(quota) for user, quota in own}
    rows = {str(user): (int(used or 0), int(count), name) for user, used, count, name in sums}
    for user in quotas:
        rows.setdefault(user, (0, 0, None))
    ordered = sorted(rows.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        (user, used, count, quotas.get(user), name)
        for user, (used, count, name) in ordered[offset : offset + limit]
    ]


async def videos_of(session: AsyncSession, user_id: str) -> list[uuid.UUID]:
    return list(
        (
            await session.execute(select(GalleryVideo.id).where(GalleryVideo.user_id == user_id))
        ).scalars()
    )


async def drop_quota(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(GalleryUserQuota).where(GalleryUserQuota.user_id == user_id))


async def rated_by(session: AsyncSession, user_id: str) -> list[uuid.UUID]:
    return list(
        (
            await session.execute(
                select(GalleryRating.video_id).where(GalleryRating.user_id == user_id)
            )
        ).scalars()
    )


async def comments_by(session: AsyncSession, user_id: str) -> list[uuid.UUID]:
    """The user's live comments, replies first (a thread's placeholder then goes with
    its last reply instead of staying behind)."""
    rows = await session.execute(
        select(GalleryComment.id)
        .where(GalleryComment.author_id == user_id, GalleryComment.deleted.is_(False))
        .order_by(GalleryComment.parent_id.is_(None), GalleryComment.created_at)
    )
    return list(rows.scalars())


#: Shown in place of the author of a comment left by a deleted account.
DELETED_AUTHOR = "deleted account"


async def anonymise_comments(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        update(GalleryComment)
        .where(GalleryComment.author_id == user_id)
        .values(author_name=DELETED_AUTHOR)
        .execution_options(synchronize_session=False)
    )
