"""Benchmark: gallery listing at scale — page numbers (OFFSET) against keyset cursors.

Creates its own PostgreSQL database (``vf_bench_<random>`` on 127.0.0.1:5432, user
postgres), migrates it to head with :func:`videoforge.migrations.upgrade`, bulk-loads N
rows into ``gallery_videos`` with one ``INSERT … SELECT … FROM generate_series`` (the
migration's indexes are dropped for the load and rebuilt from their own definitions,
as one would for a restore), runs ``VACUUM (ANALYZE)``, then times listings through the
gallery's real code path, :func:`videoforge.gallery.search.list_videos`, on a real
async engine and session (one session per call, as a request gets):

- newest and most-viewed, anonymous: page 1, a deep page by page number (OFFSET, plus
  the ``count(*)`` behind ``total``) and the same page reached by cursor;
- newest for a signed-in user (two branches: public+ready, and everything of one's own);
- full-text search (a common word, a rarer two-word query, a word in only the 3
  oldest videos, a word with no hit), page 1 and page 2;
- an owner's listing (``owner=me``) of a prolific uploader, page 1 and deep.
- the search filter of the index-walking plan, on the stored ``search_document`` column
  (migration 0007) beside the ``to_tsvector`` expression it replaced, same plan forced.

Each case runs ``--repeat`` times; the script prints the medians, the ratio deep OFFSET /
deep cursor, the cost of the count alone (capped at ``search.COUNT_CAP`` as the gallery
runs it, beside the uncapped ``count(*)``, with their ratio), and ``EXPLAIN (ANALYZE,
BUFFERS)`` figures (rows read, buffers touched) showing a cursor page reads about a
page of rows. The deep cursor page is checked to hold exactly the rows of the same page
by number. The database is dropped at the end, whatever happens.

Usage::

    .venv/bin/python bench/listing.py                       # 1,000,000 rows, 5 repeats
    .venv/bin/python bench/listing.py --rows 200000 --repeat 3 --deep-page 2000
    .venv/bin/python bench/listing.py --plans               # also print full text plans
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import fresh_database, inline_sql, plan_nodes
from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from videoforge.gallery import search
from videoforge.gallery.schemas import VideoSort
from videoforge.gallery.search import ListParams, ListResult, build_listing, encode_cursor
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import create_engine, session_factory

# Word list for titles and descriptions. Picks are skewed towards the start of the
# list (index ~ n * random()^2), so early words are common and late ones are rare:
# search then has both broad and narrow queries to answer.
_WORD_TEXT = (
    "video travel music cat dog tutorial review live game city night summer winter "
    "beach mountain river forest drone timelapse cooking recipe kitchen bread pasta "
    "guitar piano drums concert festival football tennis cycling running marathon "
    "training workout yoga garden flowers birds wildlife ocean sunset sunrise rain "
    "storm snow train airport road trip camping hiking climbing skiing surfing sailing "
    "boat harbour castle museum library school lecture physics chemistry biology "
    "history painting drawing pottery woodwork knitting sewing fashion makeup vlog "
    "family wedding birthday party baby puppy kitten horse farm tractor engine car "
    "motorbike repair restoration vintage retro robot arduino raspberry laser printer "
    "coding python rust database server network security keyboard camera lens studio "
    "lighting editing colour grading animation stopmotion claymation origami puzzle "
    "chess poker magic comedy sketch interview podcast documentary trailer teaser "
    "premiere highlights recap unboxing haul challenge prank reaction asmr meditation "
    "lighthouse volcano glacier desert canyon waterfall aurora eclipse comet telescope "
    "satellite rocket launch quokka axolotl narwhal pangolin okapi tardigrade"
)
WORDS = tuple(_WORD_TEXT.split())
#: A word that is in no title or description.
NO_HIT = "zebra"
#: A word put in the descriptions of the 3 oldest public, ready videos only.
NEEDLE = "kakapo"
NEEDLE_SQL = """
UPDATE gallery_videos SET description = description || ' ' || :word
WHERE id IN (
    SELECT id FROM gallery_videos WHERE visibility = 'public' AND status = 'ready'
    ORDER BY created_at LIMIT 3
)
"""

# Columns set by the load; everything else in gallery_videos is nullable.
LOAD_SQL = """
INSERT INTO gallery_videos (
    id, user_id, owner_name, title, description, visibility, status, progress,
    failure_reason, s3_key, original_filename, content_type, duration, width, height,
    resolution, video_codec, audio_codec, file_size, thumbnail_key, hls_master_key,
    renditions, views, version, created_at, updated_at
)
SELECT
    r.id, r.user_id, 'User ' || r.u, r.title, r.description, r.visibility, r.status,
    CASE WHEN r.status = 'ready' THEN 100 ELSE 0 END,
    CASE WHEN r.status = 'failed' THEN 'ffmpeg exited with status 1' END,
    'originals/' || r.user_id || '/' || r.id || '.mp4', 'clip.mp4', 'video/mp4',
    r.duration, 1280, 720, '720p', 'h264', 'aac', (r.duration * 250000)::bigint,
    'videos/' || r.id || '/thumb.jpg', 'videos/' || r.id || '/hls/master.m3u8',
    '[]', r.views, 1, r.created_at, r.created_at
FROM (
    SELECT
        md5('vf-bench-' || g) AS id,
        -- 1,000 users, heavily skewed: user-0 owns ~10 % of the rows.
        'user-' || p.u AS user_id,
        p.u,
        initcap((CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int]) AS title,
        (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] || ' '
            || (CAST(:w AS text[]))[1 + floor(:n * power(random(), 2))::int] AS description,
        CASE WHEN p.v < 0.85 THEN 'public' WHEN p.v < 0.95 THEN 'unlisted' ELSE 'private' END
            AS visibility,
        CASE WHEN p.s < 0.90 THEN 'ready' WHEN p.s < 0.94 THEN 'processing'
             WHEN p.s < 0.97 THEN 'uploaded' ELSE 'failed' END AS status,
        -- Views: log-uniform-ish, most videos have a few, a handful have millions.
        floor(exp(16 * random() * random()))::bigint AS views,
        round((5 + 1800 * power(random(), 3))::numeric, 2)::float AS duration,
        -- About 3 years of uploads, one every ~95 s, with jitter.
        now() - (g * interval '95 seconds') - (random() * interval '60 seconds')
            AS created_at
    FROM generate_series(1, :rows) AS g,
         LATERAL (
             -- g * 0 makes the subquery correlated, so it runs (and draws) per row.
             SELECT random() + g * 0 AS v, random() + g * 0 AS s,
                    floor(1000 * power(random() + g * 0, 3))::int AS u
         ) AS p
) AS r
"""


@dataclass
class Case:
    """One timed listing: a label, who asks, and the parameters."""

    label: str
    principal: Principal | None
    params: ListParams


@dataclass
class Timing:
    label: str
    times: list[float]
    rows: int
    total: int | None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000


async def load(engine: AsyncEngine, rows: int) -> dict[str, float]:
    """Bulk-load ``rows`` videos; returns the time of each step in seconds."""
    steps: dict[str, float] = {}
    async with engine.connect() as conn:
        await conn.execute(text("SET maintenance_work_mem = '256MB'"))
        await conn.execute(text("SET synchronous_commit = off"))
        result = await conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'gallery_videos' AND indexname LIKE 'ix_%'"
            )
        )
        indexes = [(str(r[0]), str(r[1])) for r in result]
        for name, _ in indexes:
            await conn.execute(text(f'DROP INDEX "{name}"'))
        start = time.perf_counter()
        await conn.execute(
            text(LOAD_SQL).bindparams(
                w=list(WORDS),
                n=len(WORDS),
                rows=rows,
            )
        )
        await conn.execute(text(NEEDLE_SQL).bindparams(word=NEEDLE))
        await conn.commit()
        steps["insert"] = time.perf_counter() - start
        start = time.perf_counter()
        for _, definition in indexes:
            await conn.execute(text(definition))
        await conn.commit()
        steps["indexes"] = time.perf_counter() - start
    # VACUUM cannot run in a transaction block. It sets the visibility map, as
    # autovacuum does on an insert-only table (PostgreSQL 13+), so index-only scans and
    # count(*) behave as they would in production.
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        start = time.perf_counter()
        await conn.execute(text("VACUUM (ANALYZE) gallery_videos"))
        steps["vacuum_analyze"] = time.perf_counter() - start
    return steps


async def timed(
    sessions: async_sessionmaker[AsyncSession], case: Case, repeat: int
) -> tuple[Timing, ListResult]:
    """Run ``case`` through the gallery's list function ``repeat`` times."""
    times: list[float] = []
    result: ListResult | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        async with sessions() as session:
            result = await search.list_videos(session, case.principal, case.params)
        times.append(time.perf_counter() - start)
    assert result is not None
    return Timing(case.label, times, len(result.items), result.total), result


async def timed_count(
    sessions: async_sessionmaker[AsyncSession], case: Case, repeat: int
) -> tuple[Timing, Timing]:
    """The count behind page-number mode's ``total``, alone: as the gallery runs it
    (capped at ``search.COUNT_CAP``) and uncapped, alternating which goes first."""
    uncapped_params = ListParams(**{**case.params.__dict__, "count_cap": 10**12})
    statements = {
        "capped": build_listing("postgresql", case.principal, case.params).count_stmt,
        "exact": build_listing("postgresql", case.principal, uncapped_params).count_stmt,
    }
    times: dict[str, list[float]] = {"capped": [], "exact": []}
    totals = {"capped": 0, "exact": 0}
    for i in range(repeat):
        for kind in ("capped", "exact") if i % 2 else ("exact", "capped"):
            stmt = statements[kind]
            assert stmt is not None
            start = time.perf_counter()
            async with sessions() as session:
                totals[kind] = int((await session.execute(stmt)).scalar_one())
            times[kind].append(time.perf_counter() - start)
    cap = f"{search.COUNT_CAP:,}"
    return (
        Timing(f"count capped at {cap} for {case.label}", times["capped"], 0, totals["capped"]),
        Timing(f"count(*) uncapped for {case.label}", times["exact"], 0, totals["exact"]),
    )


async def cursor_before_page(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal | None,
    params: ListParams,
    page: int,
) -> str:
    """The cursor a client would hold after paging to ``page - 1`` (its last row)."""
    prev = ListParams(**{**params.__dict__, "page": page - 1, "cursor": None, "max_offset": 10**12})
    async with sessions() as session:
        result = await search.list_videos(session, principal, prev)
    if not result.items:
        raise SystemExit(f"page {page - 1} is empty: use a smaller --deep-page or more --rows")
    return encode_cursor(params.sort, result.items[-1])


@dataclass
class Plan:
    label: str
    rows_read: int
    buffers: int
    planning_ms: float
    execution_ms: float
    text: str


async def explain(engine: AsyncEngine, label: str, stmt: Select[Any]) -> Plan:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement the gallery builds, with its values
    inlined. 'Rows read' is what the scan nodes produced plus what their filters threw
    away (x loops), i.e. the rows PostgreSQL had to visit to produce the page."""
    sql = inline_sql(engine, stmt)
    async with engine.connect() as conn:
        raw = (
            await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql))
        ).scalar_one()
        lines = await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql))
        plan_text = "\n".join(str(r[0]) for r in lines)
    doc = raw if isinstance(raw, list) else json.loads(raw)
    top = doc[0]
    nodes = list(plan_nodes(top["Plan"]))
    scans = [n for n in nodes if "Scan" in n["Node Type"] and "Subquery" not in n["Node Type"]]
    rows_read = sum(
        (int(n["Actual Rows"]) + int(n.get("Rows Removed by Filter", 0))) * int(n["Actual Loops"])
        for n in scans
    )
    buffers = int(top["Plan"].get("Shared Hit Blocks", 0)) + int(
        top["Plan"].get("Shared Read Blocks", 0)
    )
    return Plan(
        label,
        rows_read,
        buffers,
        float(top["Planning Time"]),
        float(top["Execution Time"]),
        plan_text,
    )


#: What migration 0007 stored as ``search_document``: the expression searched before it.
_DOCUMENT_EXPRESSION = (
    "to_tsvector('simple'::regconfig, coalesce(gallery_videos.title, '') || ' ' || "
    "coalesce(gallery_videos.description, ''))"
)


async def walk_filter_costs(
    engine: AsyncEngine, q: str, repeat: int
) -> tuple[list[float], list[float], int]:
    """The index-walking page query of search ``q`` (the plan PostgreSQL picks for many
    hits), filtering on the stored ``search_document`` and on the expression it
    replaced; both forced onto the same walk of the listing index, alternating which
    runs first. Returns the execution times (ms) of each and the rows the walk read."""
    stmt = build_listing("postgresql", None, ListParams(q=q)).page_stmt
    stored = inline_sql(engine, stmt)
    assert search.PG_DOCUMENT in stored
    expression = stored.replace(search.PG_DOCUMENT, _DOCUMENT_EXPRESSION)
    times: dict[str, list[float]] = {"stored": [], "expression": []}
    rows = 0
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        for i in range(repeat):
            for kind in ("stored", "expression") if i % 2 else ("expression", "stored"):
                sql = stored if kind == "stored" else expression
                raw = (
                    await conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql))
                ).scalar_one()
                top = (raw if isinstance(raw, list) else json.loads(raw))[0]
                times[kind].append(float(top["Execution Time"]))
                scans = [n for n in plan_nodes(top["Plan"]) if "Index Scan" in n["Node Type"]]
                rows = sum(
                    int(n["Actual Rows"]) + int(n.get("Rows Removed by Filter", 0)) for n in scans
                )
        await conn.rollback()
    return times["stored"], times["expression"], rows


def _fmt_ms(ms: float) -> str:
    return f"{ms:9.1f} ms" if ms >= 10 else f"{ms:9.2f} ms"


async def bench(url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    try:
        print(f"loading {args.rows:,} rows ...", flush=True)
        steps = await load(engine, args.rows)
        print(
            "  insert {insert:.1f} s, rebuild indexes {indexes:.1f} s, "
            "VACUUM (ANALYZE) {vacuum_analyze:.1f} s".format(**steps)
        )
        async with engine.connect() as conn:
            size = (
                await conn.execute(
                    text(
                        "SELECT pg_size_pretty(pg_table_size('gallery_videos')), "
                        "pg_size_pretty(pg_indexes_size('gallery_videos'))"
                    )
                )
            ).one()
            mix = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE visibility='public' AND status='ready'), "
                        "count(DISTINCT user_id), max(views), "
                        "percentile_disc(0.5) WITHIN GROUP (ORDER BY views) "
                        "FROM gallery_videos"
                    )
                )
            ).one()
            prolific = (
                await conn.execute(
                    text(
                        "SELECT user_id, count(*) FROM gallery_videos "
                        "GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
                    )
                )
            ).one()
        print(
            f"  table {size[0]}, indexes {size[1]}; public+ready {mix[0]:,}, "
            f"{mix[1]} users, views median {mix[3]:,} max {mix[2]:,}; "
            f"most prolific {prolific[0]} with {prolific[1]:,} videos"
        )

        per = args.per_page
        deep = args.deep_page
        owner_deep = args.owner_deep_page
        reader = Principal(user_id="user-42", username="bench42")
        owner = Principal(user_id=str(prolific[0]), username="bench-owner")
        common = WORDS[0]
        rare = f"{WORDS[-2]} {WORDS[len(WORDS) // 2]}"

        def p(**kw: Any) -> ListParams:
            return ListParams(per_page=per, **kw)

        timings: list[Timing] = []
        ratios: list[tuple[str, float, float]] = []
        counts: list[tuple[str, float, float]] = []
        plans: list[Plan] = []

        async def deep_trio(
            name: str, principal: Principal | None, base: ListParams, depth: int
        ) -> None:
            """Page 1, page ``depth`` by number and the same page by cursor."""
            first, _ = await timed(sessions, Case(f"{name}: page 1", principal, base), args.repeat)
            timings.append(first)
            cursor = await cursor_before_page(sessions, principal, base, depth)
            by_number = Case(
                f"{name}: page {depth:,} by number",
                principal,
                # Past the API's MAX_OFFSET (it answers page_too_deep), to show why.
                ListParams(**{**base.__dict__, "page": depth, "max_offset": 10**12}),
            )
            by_cursor = Case(
                f"{name}: page {depth:,} by cursor",
                principal,
                ListParams(**{**base.__dict__, "cursor": cursor}),
            )
            # Alternate which goes first, so cache warmth favours neither.
            t_num, r_num = await timed(sessions, by_number, 1)
            t_cur, r_cur = await timed(sessions, by_cursor, 1)
            for i in range(args.repeat - 1):
                pair = [(by_number, t_num), (by_cursor, t_cur)]
                for case, timing in pair if i % 2 else reversed(pair):
                    more, _ = await timed(sessions, case, 1)
                    timing.times.extend(more.times)
            if [v.id for v in r_num.items] != [v.id for v in r_cur.items]:
                raise SystemExit(f"{name}: cursor page differs from page {depth} by number")
            capped, exact = await timed_count(sessions, by_number, args.repeat)
            timings.extend([t_num, t_cur, capped, exact])
            counts.append((name, exact.median_ms, capped.median_ms))
            ratios.append((name, t_num.median_ms, t_cur.median_ms))
            first_query = build_listing("postgresql", principal, base)
            plans.append(await explain(engine, f"{name}, page 1", first_query.page_stmt))
            cur_query = build_listing("postgresql", principal, by_cursor.params)
            num_query = build_listing("postgresql", principal, by_number.params)
            plans.append(await explain(engine, f"{name}, cursor", cur_query.page_stmt))
            plans.append(await explain(engine, f"{name}, OFFSET", num_query.page_stmt))

        print("measuring ...", flush=True)
        await deep_trio("newest, anonymous", None, p(sort=VideoSort.NEWEST), deep)
        await deep_trio("most viewed, anonymous", None, p(sort=VideoSort.MOST_VIEWED), deep)
        await deep_trio("newest, signed-in user", reader, p(sort=VideoSort.NEWEST), deep)
        await deep_trio(
            f"owner=me ({owner.user_id})", owner, p(owner="me", sort=VideoSort.NEWEST), owner_deep
        )

        for q in (common, rare, NEEDLE, NO_HIT):
            first_case = Case(f"search {q!r}: page 1", None, p(q=q))
            # A search with (almost) no hit can be slow (see docs/benchmarks.md).
            reps = min(args.repeat, 3) if q in (NEEDLE, NO_HIT) else args.repeat
            first, result = await timed(sessions, first_case, reps)
            timings.append(first)
            capped, exact = await timed_count(sessions, first_case, reps)
            timings.extend([capped, exact])
            counts.append((f"search {q!r}", exact.median_ms, capped.median_ms))
            if result.next_cursor is not None:
                second = Case(
                    f"search {q!r}: page 2 by cursor", None, p(q=q, cursor=result.next_cursor)
                )
                t_second, _ = await timed(sessions, second, args.repeat)
                timings.append(t_second)
                query = build_listing("postgresql", None, second.params)
                plans.append(await explain(engine, f"search {q!r}, page 2 cursor", query.page_stmt))
            query = build_listing("postgresql", None, first_case.params)
            plans.append(await explain(engine, f"search {q!r}, page 1", query.page_stmt))

        print()
        print(f"list_videos, {per} per page, median of {args.repeat} (all times in ms):")
        width = max(len(t.label) for t in timings)
        for t in timings:
            extra = f"  total={t.total:,}" if t.total is not None else ""
            runs = " ".join(f"{x * 1000:.1f}" for x in t.times)
            print(f"  {t.label:<{width}} {_fmt_ms(t.median_ms)}   [{runs}]{extra}")
        print()
        print("deep page, by number (OFFSET + count) / by cursor:")
        for name, num, cur in ratios:
            print(f"  {name:<34} {num:9.1f} ms / {cur:7.2f} ms = {num / cur:7.0f}x")
        print()
        print("index-walk search filter, expression recomputed per row / stored column:")
        for q in (NEEDLE, NO_HIT, rare):
            stored_ms, expression_ms, walked = await walk_filter_costs(engine, q, args.repeat)
            st, ex = statistics.median(stored_ms), statistics.median(expression_ms)
            print(
                f"  {q!r:<34} {ex:9.1f} ms / {st:7.1f} ms = {ex / st:7.1f}x"
                f"   ({walked:,} rows walked)"
            )
        print()
        print(f"page-number total, count(*) uncapped / capped at {search.COUNT_CAP:,}:")
        for name, exact_ms, capped_ms in counts:
            ratio = exact_ms / capped_ms
            print(f"  {name:<34} {exact_ms:9.1f} ms / {capped_ms:7.2f} ms = {ratio:7.1f}x")
        print()
        print("EXPLAIN (ANALYZE, BUFFERS) of the page query (without the count):")
        width = max(len(pl.label) for pl in plans)
        for pl in plans:
            print(
                f"  {pl.label:<{width}}  rows read {pl.rows_read:>9,}  "
                f"buffers {pl.buffers:>7,}  execution {pl.execution_ms:8.2f} ms"
            )
        if args.plans:
            for pl in plans:
                print(f"\n--- {pl.label}\n{pl.text}")
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--deep-page", type=int, default=5000)
    parser.add_argument("--owner-deep-page", type=int, default=1000)
    parser.add_argument("--plans", action="store_true", help="print full text plans")
    args = parser.parse_args()

    with fresh_database() as url:
        asyncio.run(bench(url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
