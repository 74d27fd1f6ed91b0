"""View counting: dedup per viewer in the cache, a durable log in the database, totals
flushed as ``views = views + n``.

A view is recorded by the player calling the views endpoint. One viewer (user id, or
the client address — its /64 for IPv6 — for anonymous viewers) counts once per video
per window (``set_if_absent`` with a TTL in the cache). A counted view is appended to
``gallery_view_log`` and committed *before* the viewer is told ``counted: true``;
concurrent views share one commit (:class:`ViewLog`, a group commit). The flusher adds
log rows to ``gallery_videos.views`` and the daily table and deletes them in one
transaction, so a failed flush leaves them for the next one.

The cache is only the dedup window: if Redis loses its data the window restarts (a
viewer may count once more); counts never go down. When the cache is down, the view
rate limit is skipped (fails open) and the dedup answers 503 ``unavailable``: nothing
is counted unchecked, and the player may retry.

Earlier versions buffered counts in a cache hash (:data:`PENDING_VIEWS`); the flusher
still moves whatever is found there into the log, so a rolling upgrade loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gallery.models import GalleryVideo, GalleryVideoViewsDaily, GalleryViewLog
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import CacheUnavailable, log_failure
from videoforge.infra.forwarded import client_block
from videoforge.infra.runtime import Infra

log = structlog.get_logger("videoforge.gallery.views")

VIEW_WINDOW_SECONDS = 30 * 60
#: The cache hash that releases before the view log buffered counts in: drained into the
#: log by every flush, so an upgraded install loses none.
PENDING_VIEWS = "gallery:views:pending"
FLUSH_INTERVAL_SECONDS = 5.0
#: Log rows moved into the totals per transaction (short transactions, bounded locks).
FLUSH_BATCH_SIZE = 1000
#: Views written per group commit at most.
LOG_BATCH_SIZE = 500


def viewer_id(principal: Principal | None, client_ip: str) -> str:
    """Who is watching: the user, or (anonymous) a digest of the client's address.

    Not the User-Agent: a client sets it freely, so rotating it would make every call a
    new viewer. Anonymous viewers behind one address (a NAT) count once per window.
    """
    if principal is not None:
        return "u:" + hashlib.sha256(principal.user_id.encode()).hexdigest()[:32]
    return "a:" + hashlib.sha256(client_block(client_ip).encode()).hexdigest()[:32]


class ViewLog:
    """Appends counted views to ``gallery_view_log``; :meth:`append` returns once the
    view is committed.

    Group commit: the views that arrive while one batch is being written go together in
    the next one, so a burst of views costs a few transactions rather than one each, and
    a lone view waits for nobody.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._pending: list[tuple[uuid.UUID, date, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, video_id: uuid.UUID, day: date) -> None:
        """Log one view of ``video_id`` on ``day``; raises what the commit raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((video_id, day, future))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_pending(), name="gallery-view-log")
        await future

    async def _write_pending(self) -> None:
        while self._pending:
            batch = self._pending[:LOG_BATCH_SIZE]
            del self._pending[:LOG_BATCH_SIZE]
            counts = Counter((video_id, day) for video_id, day, _ in batch)
            try:
                async with session_scope(self.sessions) as session:
                    await session.execute(
                        insert(GalleryViewLog),
                        [{"video_id": v, "day": d, "views": n} for (v, d), n in counts.items()],
                    )
            except BaseException as exc:
                _settle(batch, exc)
                if not isinstance(exc, Exception):  # cancelled: nobody writes the rest
                    _settle(self._pending, exc)
                    self._pending.clear()
                    raise
            else:
                _settle(batch, None)


def _settle(
    batch: list[tuple[uuid.UUID, date, asyncio.Future[None]]], error: BaseException | None
) -> None:
    for _, _, future in batch:
        if future.done():  # its request was cancelled
            continue
        if error is None:
            future.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)


def view_log(infra: Infra) -> ViewLog:
    """This process's :class:`ViewLog` for ``infra``'s database."""
    current = infra.extras.get("gallery.view_log")
    if not isinstance(current, ViewLog) or current.sessions is not infra.sessions:
        current = ViewLog(infra.sessions)
        infra.extras["gallery.view_log"] = current
    return current


async def record_view(
    infra: Infra, video_id: uuid.UUID, viewer: str, *, now: datetime | None = None
) -> bool:
    """Count one view unless this viewer was counted for this video within the window.

    True only once the view is committed to the database. Raises
    :class:`~videoforge.infra.errors.CacheUnavailable` when the dedup cannot be checked;
    when the database write fails the dedup mark is removed again, so that the player's
    retry is counted.
    """
    mark = f"gallery:viewed:{video_id.hex}:{viewer}"
    if not await infra.cache.set_if_absent(mark, "1", ttl=VIEW_WINDOW_SECONDS):
        return False
    try:
        await view_log(infra).append(video_id, (now or utcnow()).date())
    except Exception:
        with contextlib.suppress(Exception):
            await infra.cache.delete(mark)
        raise
    return True


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
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = upsert(GalleryVideoViewsDaily).values(rows)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["video_id", "day"],
                set_={"views": GalleryVideoViewsDaily.views + stmt.excluded.views},
            )
        )
    await session.flush()
    return sum(per_video.values())


async def _take_logged(
    session: AsyncSession, limit: int
) -> tuple[int, dict[tuple[uuid.UUID, date], int]]:
    """Delete up to ``limit`` log rows; how many, and their counts. The caller's transaction
    adds them to the totals: both happen, or neither. On PostgreSQL, concurrent flushers
    skip each other's rows (``SKIP LOCKED``); SQLite's writers take turns anyway."""
    chosen = (
        select(GalleryViewLog.id)
        .order_by(GalleryViewLog.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await session.execute(
        delete(GalleryViewLog)
        .where(GalleryViewLog.id.in_(chosen))
        .returning(GalleryViewLog.video_id, GalleryViewLog.day, GalleryViewLog.views)
        .execution_options(synchronize_session=False)
    )
    taken = 0
    counts: dict[tuple[uuid.UUID, date], int] = defaultdict(int)
    for video_id, day, amount in rows:
        taken += 1
        counts[(video_id, day)] += amount
    return taken, counts


async def _adopt_cache_buffer(infra: Infra) -> None:
    """Move counts an upgraded install still holds in the cache into the log."""
    try:
        drained = await infra.cache.hdrain(PENDING_VIEWS)
    except CacheUnavailable:
        return  # the cache is down: what it holds waits for the next flush
    counts = _parse(drained)
    if not counts:
        return
    try:
        async with session_scope(infra.sessions) as session:
            await session.execute(
                insert(GalleryViewLog),
                [{"video_id": v, "day": d, "views": n} for (v, d), n in counts.items()],
            )
    except BaseException:
        # Drained counts exist nowhere else: back into the buffer before raising.
        for name, amount in drained.items():
            await infra.cache.hincr(PENDING_VIEWS, name, amount)
        raise


async def flush_views(infra: Infra, *, batch_size: int = FLUSH_BATCH_SIZE) -> int:
    """Move logged views into the totals; returns how many views were added (views of
    videos deleted meanwhile are dropped). A failed batch stays logged for next time."""
    await _adopt_cache_buffer(infra)
    flushed = 0
    while True:
        async with session_scope(infra.sessions) as session:
            taken, counts = await _take_logged(session, batch_size)
            if counts:
                flushed += await _apply(session, counts)
        # Fewer rows than asked for: the log is empty (or another flusher has the rest).
        if taken < batch_size:
            break
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
        except Exception as exc:
            # The views stay logged for the next flush.
            log_failure(log, "views_flush_failed", exc)
    try:
        await flush_views(infra)
    except Exception as exc:
        log_failure(log, "views_final_flush_failed", exc)
