"""Benchmark: the gallery's HTTP listing against pgbench running the very same SQL.

Loads ``--rows`` videos into a database of its own on 127.0.0.1:5432 (the loader of
``bench/listing.py``), starts ``videoforge gallery`` on it (``--workers``, default one
per core), and for each case alternates, ``--rounds`` times:

- HTTP load at ``--concurrency`` for ``--seconds`` with ``wrk`` (C, so the load
  generator takes little of the CPU the gallery needs): requests/s and p99;
- ``pgbench`` with the same SQL the gallery runs for that request (compiled from the
  gallery's own query builder, so it stays the same SQL as the code changes), at the
  same concurrency: transactions/s.

It prints, per case, the medians, the ratio HTTP / pgbench, and the gallery's CPU per
request (user + system time of its processes over the HTTP runs, divided by the
requests they answered). The cases are the issue's: the first page, ``?q=video`` and a
cursor page (anonymous) from the gallery; the same first page through the gateway's
proxy; and ``GET /api/jobs/{id}`` from the gateway (its SQL recorded from the jobs
domain's own read). The database is dropped at the end.

The anonymous listings are answered from the gallery's listing cache after their
first build (``gallery.listing_cache``: kept until anything they show changes, and
nothing changes during a run); ``--no-listing-cache`` measures the path that builds
every answer, as a signed-in caller's listing always is.

Usage::

    .venv/bin/python bench/serving.py                     # 1,000,000 rows
    .venv/bin/python bench/serving.py --rows 100000 --seconds 5 --rounds 2 --workers 1
    .venv/bin/python bench/serving.py --keep    # then: --database NAME --only "cursor page"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listing
from _common import SERVER, create_database, drop_database, free_port

from videoforge.gallery.schemas import VideoSort
from videoforge.gallery.search import ListParams, build_listing
from videoforge.infra.db import create_engine, session_factory
from videoforge.jobs.service import get_job, job_read
from videoforge.migrations import upgrade


@dataclass
class Case:
    label: str
    path: str
    params: ListParams


def literal(value: Any) -> str:
    """``value`` as a PostgreSQL literal (for pgbench, which takes plain SQL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, list | tuple):
        return "ARRAY[" + ", ".join(literal(v) for v in value) + "]"
    text = str(value).replace("'", "''")
    return f"'{text}'"


def to_sql(stmt: Any) -> str:
    """The statement as asyncpg would send it, with its parameters written in."""
    # SQLAlchemy's dialect constructors carry no annotations.
    compiled = stmt.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    sql = str(compiled)
    params = compiled.params
    # Longest names first: %(id_1)s must not be replaced inside %(id_10)s.
    for name in sorted(params, key=len, reverse=True):
        sql = sql.replace(f"%({name})s", literal(params[name]))
    return re.sub(r"\s+", " ", sql).strip()


def statements(case: Case) -> list[str]:
    """The SQL the gallery runs for ``case`` (as ``search.list_videos`` decides it)."""
    query = build_listing("postgresql", None, case.params)
    out = []
    if query.count_stmt is not None:
        out.append(to_sql(query.count_stmt))
    # A common word (the cases' "video") is counted past FEW_HITS, so list_videos keeps
    # this plan rather than re-planning from the full-text matches.
    out.append(to_sql(query.page_stmt))
    return out


def _matched(pattern: str, out: str) -> str:
    """The first group of ``pattern`` in a tool's report (which must have it)."""
    match = re.search(pattern, out)
    if match is None:
        raise SystemExit(f"unexpected output, no {pattern!r}:\n{out}")
    return match.group(1)


def run_wrk(
    url: str, concurrency: int, seconds: float, headers: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """(requests/s, p99 ms, requests) of ``wrk`` on ``url``."""
    duration = max(1, round(seconds))
    extra = [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
    out = subprocess.run(
        ["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{duration}s", "--latency",
         *extra, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(_matched(r"Requests/sec:\s+([\d.]+)", out))
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_text is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    requests = int(_matched(r"(\d+) requests in", out))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} non-2xx responses on {url}")
    return rps, float(p99_text.group(1)) * scale, requests


def run_pgbench(db: str, sql: list[str], concurrency: int, seconds: float) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write("\n".join(s + ";" for s in sql) + "\n")
        script = fh.name
    try:
        out = subprocess.run(
            ["pgbench", "-n", "-h", "127.0.0.1", "-U", "postgres", "-c", str(concurrency),
             "-j", str(min(2, concurrency)), "-T", str(int(seconds)), "-f", script, db],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script)
    match = re.search(r"tps = ([\d.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def load_rows(url: str, rows: int) -> None:
    engine = create_engine(url, pool_size=2)
    try:
        steps = await listing.load(engine, rows)
        print("  insert {insert:.1f} s, indexes {indexes:.1f} s".format(**steps), flush=True)
    finally:
        await engine.dispose()


def cursor_after_first_page(base: str) -> str:
    first = httpx.get(f"{base}/api/gallery/videos", timeout=30).json()
    return str(first["next_cursor"])


async def recorded_sql(url: str, run: Callable[[AsyncSession], Awaitable[object]]) -> list[str]:
    """The statements ``run`` sends, parameters written in (as pgbench needs them)."""
    engine = create_engine(url, pool_size=1)
    seen: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(_c: object, _cur: object, statement: str, params: Any, *_: object) -> None:
        sql = statement
        values = list(params or ())
        for index in range(len(values), 0, -1):  # $10 before $1
            sql = sql.replace(f"${index}", literal(values[index - 1]))
        seen.append(re.sub(r"\s+", " ", sql).strip())

    try:
        async with session_factory(engine)() as session:
            await run(session)
    finally:
        await engine.dispose()
    return [q for q in seen if not q.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"the {what} did not start")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="processes of each service")
    parser.add_argument(
        "--database", help="an already loaded database of an earlier --keep run (not dropped)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--no-listing-cache",
        action="store_true",
        help="LISTING_CACHE_ENTRIES=0: every anonymous listing is built (the lean path alone)",
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only the cases with this label"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        raise SystemExit("needs wrk and pgbench (make setup installs both)")

    name = args.database or asyncio.run(create_database())
    url = f"{SERVER}/{name}"
    keep = args.keep or bool(args.database)
    if not args.database:
        print(f"database {name}; loading {args.rows:,} rows", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="vf-serving-"))
    services: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(url)
        if not args.database:
            asyncio.run(load_rows(url, args.rows))
        gallery_port, gateway_port = free_port(), free_port()
        gallery_url = f"http://127.0.0.1:{gallery_port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "LOG_LEVEL": "WARNING",
            "VIDEOFORGE_ENV": "test",
            "JWT_SECRET": uuid.uuid4().hex * 2,
            "GALLERY_URL": gallery_url,
            "GATEWAY_URL": gateway_url,
            "RATE_LIMITS": "off",  # one client address makes every request here
            "LISTING_CACHE_ENTRIES": "0" if args.no_listing_cache else "2048",
        }
        for unset in ("REDIS_URL", "S3_BUCKET_NAME", "SQS_QUEUE_URL", "DB_HOST"):
            env.pop(unset, None)
        workers = ["--workers", str(args.workers)] if args.workers else []
        for command, port, data in (
            ("gateway", gateway_port, tmp / "gw"),
            ("gallery", gallery_port, tmp / "gl"),
        ):
            services.append(
                subprocess.Popen(
                    [sys.executable, "-m", "videoforge", command, "--port", str(port), *workers],
                    env={**env, "VIDEOFORGE_DATA_DIR": str(data)},
                    stdout=subprocess.DEVNULL,
                )
            )
        wait_healthy(gateway_url, services[0], "gateway")
        wait_healthy(gallery_url, services[1], "gallery")
        cursor = cursor_after_first_page(gallery_url)
        signup = httpx.post(
            f"{gateway_url}/api/auth/signup",
            json={
                "email": f"operator-{uuid.uuid4().hex[:8]}@example.com",
                "password": "a long bench pass phrase 51",
            },
        ).json()
        auth = {"Authorization": f"Bearer {signup['access_token']}"}
        job = httpx.post(
            f"{gateway_url}/api/jobs",
            json={"source_url": "https://media.example.com/bench.mp4"},
            headers=auth,
            timeout=30,
        ).json()
        job_id = uuid.UUID(job["id"])

        async def read_job(session: AsyncSession) -> object:
            found = await get_job(session, job_id, user_id=signup["user"]["id"])
            return await job_read(session, found)

        listing_sql = {
            "first page": statements(Case("", "", ListParams(sort=VideoSort.NEWEST))),
            "?q=video": statements(Case("", "", ListParams(q="video", sort=VideoSort.NEWEST))),
            "cursor page": statements(
                Case("", "", ListParams(sort=VideoSort.NEWEST, cursor=cursor))
            ),
        }
        cases: list[tuple[str, str, dict[str, str], list[str], int]] = [
            ("first page", f"{gallery_url}/api/gallery/videos", {}, listing_sql["first page"], 1),
            (
                "?q=video",
                f"{gallery_url}/api/gallery/videos?q=video",
                {},
                listing_sql["?q=video"],
                1,
            ),
            (
                "cursor page",
                f"{gallery_url}/api/gallery/videos?cursor={cursor}",
                {},
                listing_sql["cursor page"],
                1,
            ),
            # The gateway's proxy path: the same first page, one hop more.
            ("proxied page", f"{gateway_url}/api/gallery/videos", {}, listing_sql["first page"], 0),
            (
                "GET job",
                f"{gateway_url}/api/jobs/{job_id}",
                auth,
                asyncio.run(recorded_sql(url, read_job)),
                0,
            ),
        ]
        print(
            f"processes per service: {args.workers or 'default'}; concurrency "
            f"{args.concurrency}, {args.seconds:g} s per run, {args.rounds} rounds; "
            f"anonymous listing cache {'off' if args.no_listing_cache else 'on'}"
        )
        header = f"{'request':<13} {'HTTP req/s':>10} {'p99 ms':>8} {'pgbench tps':>12}"
        print(header + f" {'HTTP/pgbench':>13} {'CPU ms/req':>11}")
        for label, target, headers, sql, service in cases:
            if args.only and label not in args.only:
                continue
            proc = psutil.Process(services[service].pid)
            http_rps: list[float] = []
            p99s: list[float] = []
            tps: list[float] = []
            cpu = 0.0
            requests = 0
            run_wrk(target, args.concurrency, 2, headers)  # warm-up
            for _ in range(args.rounds):
                before = cpu_seconds(proc)
                rps, p99, n = run_wrk(target, args.concurrency, args.seconds, headers)
                cpu += cpu_seconds(proc) - before
                requests += n
                http_rps.append(rps)
                p99s.append(p99)
                tps.append(run_pgbench(name, sql, args.concurrency, args.seconds))
            h, p, t = statistics.median(http_rps), statistics.median(p99s), statistics.median(tps)
            print(
                f"{label:<13} {h:>10.0f} {p:>8.1f} {t:>12.0f} {h / t:>13.2f} "
                f"{cpu / max(requests, 1) * 1000:>11.2f}",
                flush=True,
            )
        print(
            "(CPU ms/req: the answering service's processes; the proxied page's is the gateway's)"
        )
    finally:
        for service_proc in services:
            service_proc.send_signal(signal.SIGTERM)
            service_proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        if keep:
            print(f"kept {name} (again: --database {name})")
        else:
            asyncio.run(drop_database(name))
            print(f"dropped {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
