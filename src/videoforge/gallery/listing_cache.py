"""Anonymous listing pages, kept in memory until anything they show changes.

What an anonymous caller's listing says depends on the ``gallery_videos`` rows and on
the clock only: no other table, no caller. So each gallery process keeps the answers
it built (the JSON bytes, by the request's :class:`~videoforge.gallery.search.ListParams`)
and serves them again while three things hold:

- **No row changed.** Migration 0020 has PostgreSQL announce every statement that
  changes ``gallery_videos`` on the ``videoforge_listing`` channel, whoever runs it;
  each process LISTENs on a connection of its own and drops everything it keeps. A
  process's own writes drop it at once, when their connection goes back to the pool
  (after the commit, before the response): the writer's next read never waits for the
  notification. An answer is only kept if no change was seen while it was being built.
- **No scheduled video came out.** A video published by its schedule changes nothing
  when its time comes: an answer is kept no later than the earliest ``publish_at``
  still ahead (every video not yet published is ``publish_pending``, so the partial
  index finds it).
- **Its stills' URLs are the ones a fresh answer would sign.** They are signed per
  window (``gallery.service``): an answer is kept until its window ends.

While the LISTEN connection is down (a PostgreSQL restart), nothing is kept or served
from memory, and everything kept before is dropped when it is back. Signed-in callers
(their own videos, their ratings) and SQLite (other processes write to the file
unannounced) are never served from here.

Measured in ``docs/benchmarks.md`` (issue 17): an anonymous first page, search or
cursor page served from memory costs the gallery a fraction of building it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from videoforge.gallery.models import GalleryVideo
from videoforge.infra.db import read_scope, utcnow

log = structlog.get_logger("videoforge.gallery.listing_cache")

#: The channel of migration 0020's trigger.
CHANNEL = "videoforge_listing"
#: How often the LISTEN connection is tested; a dead one stops the cache within this.
CHECK_SECONDS = 2.0
RECONNECT_SECONDS = 2.0
MAX_RECONNECT_SECONDS = 60.0
#: Bytes of answers a process keeps at most, whatever ``LISTING_CACHE_ENTRIES`` says
#: (the least recently used go first): a page of 100 videos is about 150 KB.
MAX_BYTES = 64 * 1024 * 1024
#: How the LISTEN connection is named in ``pg_stat_activity``.
APPLICATION_NAME = "videoforge-listing-cache"
_WROTE = "videoforge_listing_wrote"

#: What builds an answer: its JSON and the wall time it may be kept until.
Builder = Callable[[], Awaitable[tuple[bytes, float]]]

LISTING_CACHE = Counter(
    "videoforge_listing_cache",
    "Anonymous listing requests by how the cache answered: hit, miss or bypass "
    "(not kept: the cache is off or its LISTEN connection is down).",
    ["result"],
)
_HIT, _MISS, _BYPASS = (LISTING_CACHE.labels(result=r) for r in ("hit", "miss", "bypass"))


class ListingCache:
    """The answers of one process, with the generation that invalidates them."""

    def __init__(self, entries: int, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = entries
        self.max_bytes = max_bytes
        self.generation = 0
        self.listening = False
        self._entries: OrderedDict[Hashable, tuple[int, float, bytes]] = OrderedDict()
        self._bytes = 0
        self._probes: dict[str, asyncio.Future[None]] = {}
        self._flights: dict[Hashable, tuple[int, asyncio.Future[bytes | None]]] = {}
        #: (generation, wall time) of the earliest scheduled publication still ahead.
        self._next_publish: tuple[int, float] | None = None

    @property
    def active(self) -> bool:
        return self.listening and self.max_entries > 0

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._bytes = 0
        self._next_publish = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of the answers kept."""
        return self._bytes

    def get(self, key: Hashable) -> bytes | None:
        """The kept answer for ``key``, if it still holds."""
        if not self.active:
            _BYPASS.inc()
            return None
        found = self._entries.get(key)
        if found is None or found[0] != self.generation or time.time() >= found[1]:
            _MISS.inc()
            return None
        self._entries.move_to_end(key)
        _HIT.inc()
        return found[2]

    def put(self, key: Hashable, generation: int, body: bytes, until: float) -> None:
        """Keep ``body`` until ``until`` (wall time), if nothing changed since
        ``generation`` was read, before the answer was built."""
        if not self.active or generation != self.generation or time.time() >= until:
            return
        if len(body) > self.max_bytes:
            return
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self._bytes -= len(replaced[2])
        self._entries[key] = (generation, until, body)
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= len(dropped)

    async def build_once(self, key: Hashable, build: Builder) -> bytes:
        """The answer for ``key`` from ``build`` (``(body, keep until)``), kept; while a
        build of ``key`` is under way in this generation, its answer instead.

        After each change every waiting request of a popular page would otherwise build
        it at once (a count and a page query each). A request that joins a build gets
        what a request arriving a moment earlier got; one that comes after a change this
        process has seen (its own writes at once) starts its own. If the build it joined
        fails or is cancelled, it builds for itself."""
        if not self.active:
            return (await build())[0]  # nothing shared while nobody listens
        generation = self.generation
        flight = self._flights.get(key)
        if flight is not None and flight[0] == generation:
            joined = await asyncio.shield(flight[1])
            if joined is not None:
                return joined
            return (await build())[0]
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._flights[key] = (generation, future)
        body: bytes | None = None
        try:
            body, until = await build()
            self.put(key, generation, body, until)
            return body
        finally:
            if self._flights.get(key, (0, None))[1] is future:
                del self._flights[key]
            future.set_result(body)

    async def next_publish(self, sessions: async_sessionmaker[AsyncSession]) -> float:
        """When the earliest scheduled video comes out (wall time; infinity: none),
        asked of the database once per generation."""
        generation = self.generation
        known = self._next_publish
        if known is not None and known[0] == generation and time.time() < known[1]:
            return known[1]
        stmt = select(func.min(GalleryVideo.publish_at)).where(
            GalleryVideo.publish_pending, GalleryVideo.publish_at > utcnow()
        )
        async with read_scope(sessions) as session:
            moment: datetime | None = (await session.execute(stmt)).scalar_one()
        at = moment.timestamp() if moment is not None else float("inf")
        if generation == self.generation:
            self._next_publish = (generation, at)
        return at

    # ------------------------------------------------------------- invalidation
    def watch_local_writes(self, engine: AsyncEngine) -> None:
        """Drop everything when a connection that changed ``gallery_videos`` returns
        to the pool: after its commit (or rollback), before the request answers."""

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _wrote(conn: Any, _c: Any, statement: str, *_: Any) -> None:
            if "gallery_videos" in statement and statement.lstrip()[:6].upper() != "SELECT":
                conn.info[_WROTE] = True

        @event.listens_for(engine.sync_engine, "checkin")
        def _returned(_dbapi: Any, record: Any) -> None:
            if record.info.pop(_WROTE, False):
                self.invalidate()

    async def listen(self, engine: AsyncEngine, stop: asyncio.Event) -> None:
        """Keep a LISTEN connection on :data:`CHANNEL` until ``stop``, reconnecting."""
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        kwargs = {k: v for k, v in kwargs.items() if k != "prepared_statement_cache_size"}
        failures = 0
        while not stop.is_set():
            conn: asyncpg.Connection[Any] | None = None
            try:
                conn = await asyncpg.connect(
                    *args,
                    **kwargs,
                    timeout=CHECK_SECONDS * 2,
                    server_settings={"application_name": APPLICATION_NAME},
                )
                # Looked up at each notification (a test holds them back).
                await conn.add_listener(CHANNEL, lambda *a: self._notified(*a))
                conn.add_termination_listener(self._lost)
                await self._heard_through(engine)
                self.invalidate()  # whatever changed while nobody listened
                self.listening = True
                failures = 0
                log.info("listing_cache_listening")
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=CHECK_SECONDS)
                    await conn.fetchval("SELECT 1", timeout=CHECK_SECONDS)
            except Exception as exc:
                failures += 1
                if not stop.is_set():
                    log.warning("listing_cache_not_listening", error=str(exc) or type(exc).__name__)
            finally:
                self.listening = False
                self.invalidate()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            # Again at once after a loss, then less and less often (a pooler that never
            # passes notifications on must not fill the log).
            delay = min(MAX_RECONNECT_SECONDS, RECONNECT_SECONDS * 2 ** max(failures - 1, 0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _heard_through(self, engine: AsyncEngine) -> None:
        """A notification sent on another connection of the pool reaches this one.

        Behind a pooler in transaction mode (PgBouncer) a LISTEN is accepted and then
        never hears anything: the cache would keep its answers forever. So nothing is
        kept until a probe has made the whole way."""
        token = f"probe:{secrets.token_hex(8)}"
        heard = asyncio.get_running_loop().create_future()
        self._probes[token] = heard
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_notify(:channel, :token)"),
                    {"channel": CHANNEL, "token": token},
                )
            await asyncio.wait_for(heard, timeout=CHECK_SECONDS)
        except TimeoutError:
            raise RuntimeError(
                "a notification sent through the pool never arrived on the LISTEN "
                "connection (a pooler in transaction mode?): nothing is kept"
            ) from None
        finally:
            self._probes.pop(token, None)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.invalidate()
        heard = self._probes.get(payload)
        if heard is not None and not heard.done():
            heard.set_result(None)

    def _lost(self, *_: object) -> None:
        """The LISTEN connection closed: stop at once (``listen`` reconnects)."""
        self.listening = False
        self.invalidate()
