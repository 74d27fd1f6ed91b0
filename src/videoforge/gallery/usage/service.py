"""Storage accounting rules: measuring a video, a user's total against their quota, the
upload-time check, admins' quotas, and deleting every video of a user.

A video's ``storage_bytes`` is measured from the object store itself (a HEAD of the
original and a listing of each output prefix), not added up from events: the processor
does not report sizes, and a listing stays right whatever happened before it — a retry
that overwrote its outputs, a re-process that added a job's worth, captions. It is
measured when an upload is confirmed (the original) and whenever a job of the video
ends (see ``gallery.events``). Totals are sums over the user's videos, so a deletion
takes its bytes with the row.
"""

from __future__ import annotations

import contextlib
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gallery import service as videos
from videoforge.gallery.comments import service as comments
from videoforge.gallery.playlists import repository as playlists_repository
from videoforge.gallery.ratings import repository as ratings_repository
from videoforge.gallery.ratings.models import RatingValue
from videoforge.gallery.usage import repository
from videoforge.gallery.usage.schemas import UsageRead
from videoforge.gallery.webhooks import repository as webhooks_repository
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope
from videoforge.infra.errors import AppError, NotFound
from videoforge.infra.storage.base import Storage
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery.usage")


class QuotaExceeded(AppError):
    status_code = 413
    code = "quota_exceeded"


def human_bytes(size: int) -> str:
    """1536 -> "1.5 KiB" (binary units, as storage is sold)."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


async def measure_objects(storage: Storage, objects: repository.VideoObjects) -> int:
    total = 0
    for key in objects.keys:
        info = await storage.head(key)
        total += info.size if info is not None else 0
    for prefix in objects.prefixes:
        async for info in storage.list(prefix):
            total += info.size
    return total


async def measure_video(
    sessions: async_sessionmaker[AsyncSession], storage: Storage, video_id: uuid.UUID
) -> int | None:
    """List what the video holds in storage and record it; None if the video is gone.

    The listing runs outside any transaction (it can take a while on S3); the write is
    a plain overwrite, so concurrent measurements can only leave a fresh listing's
    result. Storage errors propagate (the caller retries: an event comes back)."""
    async with sessions() as session:
        objects = await repository.video_objects(session, video_id)
    if objects is None:
        return None
    size = await measure_objects(storage, objects)
    async with session_scope(sessions) as session:
        await repository.set_video_bytes(session, video_id, size)
    log.info("video_storage_measured", video_id=str(video_id), bytes=size)
    return size


async def effective_quota(
    session: AsyncSession, settings: Settings, user_id: str
) -> tuple[int | None, bool]:
    """(the user's quota or None, whether it is their own rather than the default)."""
    own = await repository.quota_of(session, user_id)
    if own is not None:
        return own, True
    return settings.storage_quota_bytes, False


async def usage_of(session: AsyncSession, settings: Settings, user_id: str) -> UsageRead:
    used, count = await repository.used_by(session, user_id)
    quota, custom = await effective_quota(session, settings, user_id)
    return UsageRead(
        user_id=user_id,
        used_bytes=used,
        reserved_bytes=await repository.reserved_by(session, user_id),
        quota_bytes=quota,
        quota_is_custom=custom,
        videos=count,
    )


async def ensure_room(session: AsyncSession, settings: Settings, user_id: str, size: int) -> None:
    """413 ``quota_exceeded`` when an upload of ``size`` bytes would take the user over
    their quota (counting uploads handed out and not confirmed yet); the message says
    how much room is left."""
    quota, _ = await effective_quota(session, settings, user_id)
    if quota is None:
        return
    used, _ = await repository.used_by(session, user_id)
    taken = used + await repository.reserved_by(session, user_id)
    left = max(quota - taken, 0)
    if size > left:
        raise QuotaExceeded(
            f"This file ({human_bytes(size)}) does not fit in your storage: "
            f"{human_bytes(left)} of your {human_bytes(quota)} are left. Delete videos "
            "to make room, or ask an administrator for more.",
            details={"quota_bytes": quota, "used_bytes": taken, "available_bytes": left},
        )


async def ensure_not_full(session: AsyncSession, settings: Settings, user_id: str) -> None:
    """413 ``quota_exceeded`` when the user has no room left at all (for URL imports,
    whose size is known only once downloaded: they need some room to start)."""
    quota, _ = await effective_quota(session, settings, user_id)
    if quota is None:
        return
    used, _ = await repository.used_by(session, user_id)
    taken = used + await repository.reserved_by(session, user_id)
    if taken >= quota:
        raise QuotaExceeded(
            f"Your storage is full ({human_bytes(taken)} of {human_bytes(quota)}). Delete "
            "videos to make room, or ask an administrator for more.",
            details={"quota_bytes": quota, "used_bytes": taken, "available_bytes": 0},
        )


async def delete_all_of(session: AsyncSession, principal: Principal) -> tuple[int, list[int]]:
    """Delete everything of the caller in the gallery, for their account's deletion:
    every video (comments and ratings on them go with it), their ratings and comments
    on other videos (counters kept right), their playlists, their quota row and their
    webhooks. Returns (videos deleted, the outbox rows to carry out after the commit).
    Reports they filed and moderation records stay: they are the moderators' history,
    and name no one but by id."""
    user = principal.user_id
    pending: list[int] = []
    ids = await repository.videos_of(session, user)
    for video_id in ids:
        pending += await videos.delete_video(session, video_id, principal)
    for video_id in await repository.rated_by(session, user):
        old = await ratings_repository.remove(session, video_id, user)
        if old is RatingValue.LIKE:
            await ratings_repository.count(session, video_id, likes=-1, dislikes=0)
        elif old is RatingValue.DISLIKE:
            await ratings_repository.count(session, video_id, likes=0, dislikes=-1)
    for comment_id in await repository.comments_by(session, user):
        # The comments domain's own deletion: placeholders for threads, counters.
        with contextlib.suppress(NotFound):  # gone meanwhile (a thread's last reply)
            await comments.delete_comment(session, comment_id, principal)
    # What the author could no longer see (a video made private since) stays, nameless.
    await repository.anonymise_comments(session, user)
    # Their playlists, public ones and Watch later too: nothing of theirs stays listed.
    await playlists_repository.remove_all_of(session, user)
    await repository.drop_quota(session, user)
    # Their webhook endpoints (with their secrets and delivery logs): an account that is
    # gone is told nothing more, not even of its own deletion.
    await webhooks_repository.delete_all_of(session, user)
    return len(ids), pending
