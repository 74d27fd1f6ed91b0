"""View counting: dedup per viewer, buffer in the cache, flush as ``views = views + n``.

A view is recorded by the player calling the views endpoint. One viewer (user id, or a
hash of IP and user agent for anonymous viewers) counts once per video per window
(``set_if_absent`` with a TTL). Counts are buffered in a cache hash (Redis when
configured, shared by every gallery instance) and drained atomically by the flusher,
which adds them to ``gallery_videos.views`` and the daily table in one transaction. If
that transaction fails the drained counts are put back, so nothing is lost; the flusher
flushes once more when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections import defaultdict
from datetime import date, datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.models import GalleryVideo, GalleryVideoViewsDaily
from videoforge.infra.auth import Principal
from videoforge.infra.cache.base import Cache
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import TooManyRequests
from videoforge.infra.runtime import Infra

log = structlog.get_logger("videoforge.gallery.views")

VIEW_WINDOW_SECONDS = 30 * 60
#: View calls per client address per minute (a player calls once per play).
VIEW_RATE_LIMIT = 120
VIEW_RATE_WINDOW = 60
PENDING_VIEWS = "gallery:views:pending"
FLUSH_INTERVAL_SECONDS = 5.0


def viewer_id(principal: Principal | None, client_ip: str, user_agent: str) -> str:
    """Who is watching: the user, or (anonymous) a digest of address and user agent."""
    if principal is not None:
        return "u:" + hashlib.sha256(principal.user_id.encode()).hexdigest()[:32]
    digest = hashlib.sha256(f"{client_ip}\n{user_agent}".encode()).hexdigest()[:32]
    return "a:" + digest


async def check_rate(cache: Cache, client_ip: str) -> None:
    result = await cache.hit(
        f"gallery:views:rate:{client_ip}", limit=VIEW_RATE_LIMIT, window=VIEW_RATE_WINDOW
    )
    if not result.allowed:
        raise TooManyRequests("Too many views from this address.", retry_after=result.retry_after)


def _field(video_id: uuid.UUID, day: date) -> str:
    return f"{video_id.hex}:{day.isoformat()}"


async def record_view(
    cache: Cache, video_id: uuid.UUID, viewer: str, *, now: datetime | None = None
) -> bool:
    """Count one view unless this viewer was counted for this video within the window."""
    first = await cache.set_if_absent(
        f"gallery:viewed:{video_id.hex}:{viewer}", "1", ttl=VIEW_WINDOW_SECONDS
    )
    if first:
        await cache.hincr(PENDING_VIEWS, _field(video_id, (now or utcnow()).date()), 1)
    return first


def _parse(drained: dict[str, int]) -> dict[tuple[uuid.UUID, date], int]:
    counts: dict[tuple[uuid.UUID, date], int] = defaultdict(int)
    for name, amount in drained.items():
        try:
            hex_id, day = name.split(":", 1)
            counts[(uuid.UUID(hex=hex_id), date.fromisoformat(day))] += int(amount)
        except ValueError:
            log.warning("views_bad_field", field=name)
    return counts


async def _apply(session: AsyncSession, counts: dict[tuple[uuid.UUID, date], int]) -> int:
    ids = {video_id for video_id, _ in counts}
    existing = set(
        (await session.execute(select(GalleryVideo.id).where(GalleryVideo.id.in_(ids)))).scalars()
    )
    per_video: dict[uuid.UUID, int] = defaultdict(int)
    rows = []
    for (video_id, day), amount in sorted(counts.items()):
        if video_id not in existing or amount <= 0:
            continue  # the video was deleted meanwhile
        per_video[video_id] += amount
        rows.append({"video_id": video_id, "day": day, "views": amount})
    # Sorted ids: concurrent flushers lock rows in the same order (no deadlock).
    for video_id in sorted(per_video):
        await session.execute(
            update(GalleryVideo)
            .where(GalleryVideo.id == video_id)
            .values(views=GalleryVideo.views + per_video[video_id])
            .execution_options(synchronize_session=False)
        )
    if rows:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(GalleryVideoViewsDaily).values(rows)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["video_id", "day"],
                set_={"views": GalleryVideoViewsDaily.views + stmt.excluded.views},
            )
        )
    await session.flush()
    return sum(per_video.values())


async def flush_views(infra: Infra) -> int:
    """Move buffered counts into the database; returns how many views were flushed.

    On failure the drained counts go back into the buffer before the error is raised.
    """
    drained = await infra.cache.hdrain(PENDING_VIEWS)
    if not drained:
        return 0
    try:
        async with session_scope(infra.sessions) as session:
            flushed = await _apply(session, _parse(drained))
    except BaseException:
        # Also on cancellation (shutdown): drained counts exist nowhere else, so they
        # must go back into the buffer before the error propagates.
        for name, amount in drained.items():
            await infra.cache.hincr(PENDING_VIEWS, name, amount)
        raise
    if flushed:
        log.info("views_flushed", views=flushed)
    return flushed


async def run_view_flusher(
    infra: Infra, stop: asyncio.Event, *, interval: float = FLUSH_INTERVAL_SECONDS
) -> None:
    """Flush every ``interval`` seconds until ``stop``; then flush one last time."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        try:
            await flush_views(infra)
        except Exception:
            log.exception("views_flush_failed")
    try:
        await flush_views(infra)
    except Exception:
        log.exception("views_final_flush_failed")
