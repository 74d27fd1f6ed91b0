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
cursor page (anonymous). The database is dropped at the end.

Usage::

    .venv/bin/python bench/serving.py                     # 1,000,000 rows
    .venv/bin/python bench/serving.py --rows 100000 --seconds 5 --rounds 2 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.dialects import postgresql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listing

from videoforge.gallery.schemas import VideoSort
from videoforge.gallery.search import ListParams, build_listing
from videoforge.infra.db import create_engine
from videoforge.migrations import upgrade


@dataclass
class Case:
    label: str
    path: str
    params: ListParams


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    compiled = stmt.compile(dialect=postgresql.dialect())
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


def run_wrk(url: str, concurrency: int, seconds: float) -> tuple[float, float, int]:
    """(requests/s, p99 ms, requests) of ``wrk`` on ``url``."""
    duration = max(1, round(seconds))
    out = subprocess.run(
        ["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{duration}s", "--latency",
         url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_text is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="gallery processes")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        raise SystemExit("needs wrk and pgbench (make setup installs both)")

    name = asyncio.run(listing.create_database())
    url = f"{listing.SERVER}/{name}"
    print(f"database {name}; loading {args.rows:,} rows", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="vf-serving-"))
    gallery: subprocess.Popen[bytes] | None = None
    try:
        upgrade(url)
        asyncio.run(load_rows(url, args.rows))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "VIDEOFORGE_DATA_DIR": str(tmp),
            "LOG_LEVEL": "WARNING",
            "VIDEOFORGE_ENV": "test",
        }
        for unset in ("REDIS_URL", "S3_BUCKET_NAME", "SQS_QUEUE_URL", "DB_HOST"):
            env.pop(unset, None)
        argv = [sys.executable, "-m", "videoforge", "gallery", "--port", str(port)]
        if args.workers:
            argv += ["--workers", str(args.workers)]
        gallery = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or gallery.poll() is not None:
                raise SystemExit("the gallery did not start")
            time.sleep(0.2)
        cursor = cursor_after_first_page(base)
        cases = [
            Case("first page", "/api/gallery/videos", ListParams(sort=VideoSort.NEWEST)),
            Case(
                "?q=video",
                "/api/gallery/videos?q=video",
                ListParams(q="video", sort=VideoSort.NEWEST),
            ),
            Case(
                "cursor page",
                f"/api/gallery/videos?cursor={cursor}",
                ListParams(sort=VideoSort.NEWEST, cursor=cursor),
            ),
        ]
        proc = psutil.Process(gallery.pid)
        workers = len([p for p in proc.children() if "resource_tracker" not in p.name()]) or 1
        print(
            f"gallery processes: {args.workers or 'default'} ({workers} seen); "
            f"concurrency {args.concurrency}, {args.seconds:g} s per run, {args.rounds} rounds"
        )
        header = f"{'request':<12} {'HTTP req/s':>10} {'p99 ms':>8} {'pgbench tps':>12}"
        print(header + f" {'HTTP/pgbench':>13} {'CPU ms/req':>11}")
        for case in cases:
            sql = statements(case)
            http_rps: list[float] = []
            p99s: list[float] = []
            tps: list[float] = []
            cpu = 0.0
            requests = 0
            run_wrk(base + case.path, args.concurrency, 2)  # warm-up
            for _ in range(args.rounds):
                before = cpu_seconds(proc)
                rps, p99, n = run_wrk(base + case.path, args.concurrency, args.seconds)
                cpu += cpu_seconds(proc) - before
                requests += n
                http_rps.append(rps)
                p99s.append(p99)
                tps.append(run_pgbench(name, sql, args.concurrency, args.seconds))
            h, p, t = statistics.median(http_rps), statistics.median(p99s), statistics.median(tps)
            print(
                f"{case.label:<12} {h:>10.0f} {p:>8.1f} {t:>12.0f} {h / t:>13.2f} "
                f"{cpu / max(requests, 1) * 1000:>11.2f}",
                flush=True,
            )
    finally:
        if gallery is not None:
            gallery.send_signal(signal.SIGTERM)
            gallery.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        asyncio.run(listing.drop_database(name))
        print(f"dropped {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
