"""Benchmark: one video with 100,000 comments on PostgreSQL — page 1 against a deep
keyset-cursor page (and, for contrast, the same deep page by OFFSET).

Creates its own PostgreSQL database (``vf_bench_comments_<random>`` on 127.0.0.1:5432,
user postgres), migrates it to head, inserts one public video and bulk-loads N top-level
comments on it (one ``INSERT … SELECT … FROM generate_series``, a second apart, every
50th held for approval and by a few authors, so the visibility filter has work to do)
plus replies on the newest comments, then ``VACUUM (ANALYZE)``. It times listings
through the gallery's real code path, :func:`videoforge.gallery.comments.service.
list_comments` / ``list_replies``, on a real async engine, one session per call as a
request gets:

- newest and oldest, anonymous: page 1, and the page after the comment at
  ``--deep`` (default 90 % of the way down) reached by its cursor;
- the same for a signed-in viewer (their own held comments show too) and for the
  video's owner (every held comment shows);
- the owner's approval queue (``status=held``), page 1 and deep;
- replies of one thread, page 1;
- the deep page by ``OFFSET`` on the same index order (what a page-number API would
  run), to show what the cursor saves.

Each case runs ``--repeat`` times; medians are printed side by side with the ratio
deep / page 1, and ``EXPLAIN (ANALYZE, BUFFERS)`` of the deep cursor page shows it reads
about a page of rows through ``ix_gallery_comments_top``. The deep cursor page is
checked against the OFFSET page (same rows). The database is dropped at the end,
whatever happens.

Usage::

    .venv/bin/python bench/comments.py                     # 100,000 comments, 7 repeats
    .venv/bin/python bench/comments.py --comments 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import explain_json, fresh_database, median_ms, plan_nodes, scan_summary

from videoforge.gallery.comments import cursors, repository, service
from videoforge.gallery.comments.models import GalleryComment
from videoforge.gallery.comments.repository import Viewer
from videoforge.gallery.comments.schemas import CommentListStatus, CommentSort
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import create_engine, session_factory

OWNER = "bench-owner"
VIEWER = "author-3"
VIDEO_ID = uuid.UUID(int=1)
#: Threads (the newest top-level comments) that get replies, and replies per thread.
THREADS = 200
REPLIES = 25

LOAD_SQL = """
INSERT INTO gallery_comments (id, video_id, parent_id, author_id, author_name, text,
    status, hold_reason, deleted, pinned, replies_count, edited_at, created_at, updated_at)
SELECT md5('c' || g::text), :video, NULL, 'author-' || (g % 997), 'Author ' || (g % 997),
    'Comment number ' || g || ' with a few words of text in it',
    CASE WHEN g % 50 = 0 THEN 'held' ELSE 'approved' END,
    CASE WHEN g % 50 = 0 THEN 'policy' END,
    false, false, 0, NULL,
    timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',
    timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
FROM generate_series(1, :rows) AS g
"""

REPLIES_SQL = """
INSERT INTO gallery_comments (id, video_id, parent_id, author_id, author_name, text,
    status, hold_reason, deleted, pinned, replies_count, edited_at, created_at, updated_at)
SELECT md5('r' || t || '-' || k), :video, md5('c' || t::text), 'author-' || (k % 97),
    'Author ' || (k % 97), 'Reply ' || k, 'approved', NULL, false, false, 0, NULL,
    timestamptz '2026-06-01 00:00:00+00' + (t * 100 + k) * interval '1 second',
    timestamptz '2026-06-01 00:00:00+00' + (t * 100 + k) * interval '1 second'
FROM generate_series(:first, :last) AS t, generate_series(1, :per) AS k
"""


async def load(engine: AsyncEngine, rows: int) -> dict[str, float]:
    """The video, ``rows`` comments and the replies; seconds per step."""
    steps: dict[str, float] = {}
    async with engine.begin() as conn:
        await conn.execute(text("SET synchronous_commit = off"))
        await conn.execute(
            text(
                "INSERT INTO gallery_videos (id, user_id, title, description, visibility,"
                " status, progress, renditions, views, version, created_at, updated_at)"
                " VALUES (:id, :owner, 'Busy video', '', 'public', 'ready', 0, '[]', 0, 1,"
                " now(), now())"
            ).bindparams(id=VIDEO_ID.hex, owner=OWNER)
        )
        start = time.perf_counter()
        await conn.execute(text(LOAD_SQL).bindparams(video=VIDEO_ID.hex, rows=rows))
        steps["comments"] = time.perf_counter() - start
        start = time.perf_counter()
        first = max(1, rows - THREADS + 1)
        await conn.execute(
            text(REPLIES_SQL).bindparams(video=VIDEO_ID.hex, first=first, last=rows, per=REPLIES)
        )
        await conn.execute(
            text(
                "UPDATE gallery_comments c SET replies_count = r.n FROM (SELECT parent_id,"
                " count(*) AS n FROM gallery_comments WHERE parent_id IS NOT NULL"
                " GROUP BY parent_id) r WHERE c.id = r.parent_id"
            )
        )
        await conn.execute(
            text(
                "UPDATE gallery_videos SET comments_count = (SELECT count(*) FROM"
                " gallery_comments WHERE status = 'approved') WHERE id = :id"
            ).bindparams(id=VIDEO_ID.hex)
        )
        steps["replies"] = time.perf_counter() - start
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        start = time.perf_counter()
        await conn.execute(text("VACUUM (ANALYZE) gallery_comments"))
        await conn.execute(text("VACUUM (ANALYZE) gallery_videos"))
        steps["vacuum_analyze"] = time.perf_counter() - start
    return steps


async def anchor(engine: AsyncEngine, sort: CommentSort, position: int, held: bool) -> Any:
    """The comment at ``position`` in the list's order (its cursor opens the deep page)."""
    order = "DESC" if sort is CommentSort.NEWEST else "ASC"
    status = "status = 'held'" if held else "parent_id IS NULL AND status = 'approved'"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    # Only this function's own constants are formatted in; values are bound.
                    f"SELECT created_at, id FROM gallery_comments WHERE video_id = :v AND"  # noqa: S608
                    f" {status} ORDER BY created_at {order}, id {order} OFFSET :n LIMIT 1"
                ).bindparams(v=VIDEO_ID.hex, n=position)
            )
        ).one()
    comment = GalleryComment(created_at=row[0], id=uuid.UUID(hex=row[1]))
    kind = f"{'held' if held else 'top'}:{sort.value}"
    return cursors.encode_cursor(kind, comment)


async def bench(url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url, pool_size=2)
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    try:
        steps = await load(engine, args.comments)
        print(
            f"loaded {args.comments:,} comments + {THREADS * REPLIES:,} replies on one video:"
            + "".join(f" {k} {v:.1f} s" for k, v in steps.items())
        )
        deep = int(args.comments * args.deep)
        callers = {
            "anonymous": None,
            "signed-in viewer": Principal(user_id=VIEWER),
            "owner": Principal(user_id=OWNER),
        }

        async def listing(
            principal: Principal | None,
            sort: CommentSort,
            cursor: str | None,
            status: CommentListStatus = CommentListStatus.VISIBLE,
        ) -> int:
            async with sessions() as session:
                page = await service.list_comments(
                    session,
                    VIDEO_ID,
                    principal,
                    sort=sort,
                    status=status,
                    cursor=cursor,
                    limit=args.per_page,
                )
            return len(page.items)

        rows_out: list[tuple[str, float, float, int]] = []
        for who, principal in callers.items():
            for sort in (CommentSort.NEWEST, CommentSort.OLDEST):
                cursor = await anchor(engine, sort, deep, held=False)
                first, n1 = await median_ms(
                    functools.partial(listing, principal, sort, None), args.repeat
                )
                deep_ms, n2 = await median_ms(
                    functools.partial(listing, principal, sort, cursor), args.repeat
                )
                assert n1 >= args.per_page, (who, sort, n1)
                assert n2 == args.per_page, (who, sort, n2)
                rows_out.append((f"{who}, {sort.value}", first, deep_ms, n2))
        owner = callers["owner"]
        held_deep = await anchor(engine, CommentSort.NEWEST, args.comments // 50 - 40, held=True)
        first, _ = await median_ms(
            lambda: listing(owner, CommentSort.NEWEST, None, CommentListStatus.HELD), args.repeat
        )
        deep_ms, n2 = await median_ms(
            lambda: listing(owner, CommentSort.NEWEST, held_deep, CommentListStatus.HELD),
            args.repeat,
        )
        rows_out.append(("owner, approval queue (held)", first, deep_ms, n2))

        # The second newest comment has replies (the newest threads got some; the
        # newest itself may be held: every 50th is).
        thread = uuid.UUID(
            hex=hashlib.md5(f"c{args.comments - 1}".encode(), usedforsecurity=False).hexdigest()
        )

        async def replies() -> int:
            async with sessions() as session:
                page = await service.list_replies(
                    session, thread, None, cursor=None, limit=args.per_page
                )
            return len(page.items)

        replies_ms, _ = await median_ms(replies, args.repeat)

        # The deep page by OFFSET on the same order: the rows a page-number API would
        # read and throw away.
        viewer = Viewer(user_id=None, sees_all_held=False)

        async def by_offset() -> list[uuid.UUID]:
            async with sessions() as session:
                stmt = (
                    repository.top_level_stmt(VIDEO_ID, viewer, descending=True)
                    .offset(deep + 1)
                    .limit(args.per_page)
                )
                return [c.id for c in (await session.execute(stmt)).scalars()]

        offset_times = []
        offset_ids: list[uuid.UUID] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            offset_ids = await by_offset()
            offset_times.append(time.perf_counter() - start)
        offset_ms = statistics.median(offset_times) * 1000
        cursor = await anchor(engine, CommentSort.NEWEST, deep, held=False)
        async with sessions() as session:
            page = await service.list_comments(
                session,
                VIDEO_ID,
                None,
                sort=CommentSort.NEWEST,
                status=CommentListStatus.VISIBLE,
                cursor=cursor,
                limit=args.per_page,
            )
        same = [c.id for c in page.items] == offset_ids

        # What the deep cursor page reads.
        after = cursors.decode_cursor("top:newest", cursor)
        stmt = repository.top_level_stmt(VIDEO_ID, viewer, descending=True, after=after)
        plan = await explain_json(engine, stmt.limit(args.per_page + 1))
        scans = [
            n for n in plan_nodes(plan["Plan"]) if n.get("Relation Name") == "gallery_comments"
        ]

        print(
            f"\n{args.per_page} per page, median of {args.repeat}; deep = after comment "
            f"{deep:,} of {args.comments:,}\n"
        )
        print(f"{'case':34} {'page 1':>10} {'deep cursor':>12} {'deep/page 1':>12}")
        for label, first_ms, deep_page_ms, _ in rows_out:
            print(
                f"{label:34} {first_ms:8.2f} ms {deep_page_ms:9.2f} ms"
                f" {deep_page_ms / first_ms:11.2f}x"
            )
        print(f"{'replies of one thread, page 1':34} {replies_ms:8.2f} ms")
        print(
            f"{'deep page by OFFSET (same order)':34} {'':>10} {offset_ms:9.2f} ms"
            f"  ({offset_ms / rows_out[0][2]:.0f}x the cursor page; same rows: {same})"
        )
        for node in scans:
            print(f"\ndeep cursor page plan: {scan_summary(node, plan)}")
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--deep", type=float, default=0.9, help="how far down (0..1)")
    args = parser.parse_args()

    with fresh_database("vf_bench_comments") as url:
        asyncio.run(bench(url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
