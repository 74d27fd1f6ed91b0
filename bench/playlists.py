"""Benchmark: one playlist of 10,000 videos on PostgreSQL — page 1 against a deep
keyset-cursor page, and the writes that must not grow with the list (a move, an
append, a removal).

Creates its own PostgreSQL database (``vf_bench_playlists_<random>`` on 127.0.0.1:5432,
user postgres), migrates it to head, bulk-loads N public ready videos (every 20th
private to a stranger, so entries the viewer may not see are shown as unavailable),
a public playlist holding all of them (positions 1024 apart, as appends leave them),
and 200 other playlists of 50 entries each (so the order index holds other lists'
rows too), then ``VACUUM (ANALYZE)``. It times, through the gallery's real code path
(:mod:`videoforge.gallery.playlists.service` on a real async engine and a local
store that signs thumbnail URLs, one session per call as a request gets):

- the playlist's first page, and the page after entry ``--deep`` (default 90 % of the
  way down) reached by its cursor, for an anonymous viewer and for the owner;
- the deep page by ``OFFSET`` on the same order, to show what the cursor saves;
- moving an entry from the end to the middle (one row written), appending one video,
  removing one — each rolled back so every repeat sees the same list.

Each case runs ``--repeat`` times; medians are printed, with ``EXPLAIN (ANALYZE,
BUFFERS)`` of the deep cursor page (an index range of about one page of rows). The
database is dropped at the end, whatever happens.

Usage::

    .venv/bin/python bench/playlists.py                 # 10,000 entries, 9 repeats
    .venv/bin/python bench/playlists.py --items 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import explain_json, fresh_database, median_ms, plan_nodes, scan_summary

from videoforge.gallery.playlists import pages, repository, service
from videoforge.gallery.playlists.models import GalleryPlaylistItem
from videoforge.gallery.playlists.repository import After
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import create_engine, session_factory
from videoforge.infra.storage.local.store import LocalStorage

OWNER = "bench-owner"
PLAYLIST_ID = uuid.UUID(int=1)
OTHER_LISTS = 200
OTHER_LIST_ITEMS = 50

VIDEOS_SQL = """
INSERT INTO gallery_videos (id, user_id, owner_name, title, description, visibility, status,
    progress, renditions, views, version, thumbnail_key, duration, created_at, updated_at)
SELECT md5('v' || g::text),
    CASE WHEN g % 20 = 0 THEN 'stranger' ELSE :owner END, 'Uploader',
    'Video number ' || g, '', CASE WHEN g % 20 = 0 THEN 'private' ELSE 'public' END,
    'ready', 100, '[]', 0, 1, 'outputs/' || md5('v' || g::text) || '/thumbnail.jpg', 60,
    now(), now()
FROM generate_series(1, :rows) AS g
"""

PLAYLISTS_SQL = """
INSERT INTO gallery_playlists (id, user_id, owner_name, kind, title, description, visibility,
    created_at, updated_at)
SELECT CASE WHEN g = 0 THEN :main ELSE md5('p' || g::text) END, :owner, 'Uploader', 'regular',
    'Playlist ' || g, '', 'public', now(), now()
FROM generate_series(0, :others) AS g
"""

ITEMS_SQL = """
INSERT INTO gallery_playlist_items (id, playlist_id, video_id, position, added_at)
SELECT md5('i' || g::text), :main, md5('v' || g::text), g * 1024.0, now()
FROM generate_series(1, :rows) AS g
"""

OTHER_ITEMS_SQL = """
INSERT INTO gallery_playlist_items (id, playlist_id, video_id, position, added_at)
SELECT md5('o' || p || '-' || k), md5('p' || p::text), md5('v' || (k + p)::text), k * 1024.0,
    now()
FROM generate_series(1, :others) AS p, generate_series(1, :per) AS k
"""


def _video_id(n: int) -> uuid.UUID:
    """The id VIDEOS_SQL gave video ``n``."""
    return uuid.UUID(hex=hashlib.md5(f"v{n}".encode(), usedforsecurity=False).hexdigest())


async def load(engine: AsyncEngine, rows: int) -> float:
    start = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("SET synchronous_commit = off"))
        await conn.execute(text(VIDEOS_SQL).bindparams(owner=OWNER, rows=rows + 1))
        await conn.execute(
            text(PLAYLISTS_SQL).bindparams(main=PLAYLIST_ID.hex, owner=OWNER, others=OTHER_LISTS)
        )
        await conn.execute(text(ITEMS_SQL).bindparams(main=PLAYLIST_ID.hex, rows=rows))
        await conn.execute(
            text(OTHER_ITEMS_SQL).bindparams(others=OTHER_LISTS, per=OTHER_LIST_ITEMS)
        )
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        for table in ("gallery_videos", "gallery_playlists", "gallery_playlist_items"):
            await conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    return time.perf_counter() - start


async def entry_at(sessions: async_sessionmaker[AsyncSession], ordinal: int) -> After:
    async with sessions() as session:
        row = (
            await session.execute(
                select(GalleryPlaylistItem.position, GalleryPlaylistItem.id)
                .where(GalleryPlaylistItem.playlist_id == PLAYLIST_ID)
                .order_by(GalleryPlaylistItem.position, GalleryPlaylistItem.id)
                .offset(ordinal)
                .limit(1)
            )
        ).one()
    return After(position=float(row[0]), id=row[1], ordinal=ordinal)


async def bench(url: str, args: argparse.Namespace, store: LocalStorage) -> None:
    engine = create_engine(url, pool_size=2)
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    ref = str(PLAYLIST_ID)
    try:
        seconds = await load(engine, args.items)
        print(
            f"loaded {args.items:,} entries in one playlist (+ {OTHER_LISTS} lists of"
            f" {OTHER_LIST_ITEMS}) in {seconds:.1f} s"
        )
        deep = int(args.items * args.deep)
        cursor = pages.encode_cursor(PLAYLIST_ID, await entry_at(sessions, deep))
        callers = {"anonymous": None, "owner": Principal(user_id=OWNER)}

        async def listing(principal: Principal | None, page_cursor: str | None) -> int:
            # What GET /api/gallery/playlists/{id}/videos does: the page of entries and
            # the playlist's header (its count and thumbnail).
            async with sessions() as session:
                page = await pages.page(
                    session, ref, principal, store, cursor=page_cursor, limit=args.per_page
                )
                await service.to_read(session, page.playlist, principal, store)
            assert page.items[0].position == (0 if page_cursor is None else deep + 1)
            return len(page.items)

        async def header() -> int:
            async with sessions() as session:
                playlist = await service.resolve(session, ref, None)
                read = await service.to_read(session, playlist, None, store)
            assert read.video_count == args.items
            assert read.thumbnail_url
            return 1

        results: list[tuple[str, float, float]] = []
        for who, principal in callers.items():
            first, n1 = await median_ms(functools.partial(listing, principal, None), args.repeat)
            deep_ms, n2 = await median_ms(
                functools.partial(listing, principal, cursor), args.repeat
            )
            assert n1 == n2 == args.per_page
            results.append((who, first, deep_ms))

        async def by_offset() -> int:
            async with sessions() as session:
                stmt = repository.page_stmt(PLAYLIST_ID, None, args.per_page).offset(deep + 1)
                return len((await session.execute(stmt)).all())

        offset_ms, _ = await median_ms(by_offset, args.repeat)
        header_ms, _ = await median_ms(header, args.repeat)

        owner = callers["owner"]
        last_video = _video_id(args.items)
        spare_video = _video_id(args.items + 1)  # loaded, in no playlist

        async def rolled_back(fn: Callable[[AsyncSession], Awaitable[object]]) -> int:
            async with sessions() as session:
                await fn(session)
                await session.rollback()
            return 1

        move_ms, _ = await median_ms(
            lambda: rolled_back(
                lambda s: service.move_video(s, ref, owner, last_video, args.items // 2)
            ),
            args.repeat,
        )
        # The list is full at 10,000: the append is timed after a removal in the same
        # (rolled-back) transaction, so it really appends at the end of a 10,000 list.
        first_video = _video_id(1)
        append_times: list[float] = []
        for _ in range(args.repeat):
            async with sessions() as session:
                await service.remove_video(session, ref, owner, first_video)
                start = time.perf_counter()
                await service.add_video(session, ref, owner, spare_video)
                append_times.append(time.perf_counter() - start)
                await session.rollback()
        append_ms = statistics.median(append_times) * 1000
        remove_ms, _ = await median_ms(
            lambda: rolled_back(lambda s: service.remove_video(s, ref, owner, last_video)),
            args.repeat,
        )

        after = pages.decode_cursor(PLAYLIST_ID, cursor)
        plan = await explain_json(
            engine, repository.page_stmt(PLAYLIST_ID, after, args.per_page + 1)
        )
        scans = [
            n
            for n in plan_nodes(plan["Plan"])
            if n.get("Relation Name") == "gallery_playlist_items"
        ]

        print(
            f"\n{args.per_page} per page, median of {args.repeat}; deep = after entry"
            f" {deep:,} of {args.items:,}\n"
        )
        print(f"{'case':28} {'page 1':>10} {'deep cursor':>12} {'deep/page 1':>12}")
        for who, first_ms, deep_page_ms in results:
            print(
                f"{who + ', playlist page':28} {first_ms:8.2f} ms {deep_page_ms:9.2f} ms"
                f" {deep_page_ms / first_ms:11.2f}x"
            )
        print(
            f"{'deep page by OFFSET (SQL)':28} {'':>10} {offset_ms:9.2f} ms"
            "  (the query alone, no URLs signed)"
        )
        print(
            f"{'the playlist header alone':28} {header_ms:8.2f} ms"
            "  (GET /playlists/{id}: count and thumbnail)"
        )
        print(f"{'move last -> middle':28} {move_ms:8.2f} ms  (one row written)")
        print(f"{'append one video':28} {append_ms:8.2f} ms")
        print(f"{'remove one video':28} {remove_ms:8.2f} ms")
        for node in scans:
            print(f"\ndeep cursor page plan: {scan_summary(node, plan)}")
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--deep", type=float, default=0.9, help="how far down (0..1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as objects, fresh_database("vf_bench_playlists") as url:
        store = LocalStorage(Path(objects), signing_key=secrets.token_bytes(32))
        asyncio.run(bench(url, args, store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
