"""Profile: where a request's CPU goes, in process, on PostgreSQL.

Loads ``--rows`` videos into a database of its own on 127.0.0.1:5432 (the loader of
``bench/listing.py``), builds the gallery's and the gateway's apps in this process
(logging configured as the services configure it, at ``--log-level``), and drives
``--requests`` requests of each case straight into the ASGI app (no client, no
sockets: what is measured is the app alone). Per case it prints the CPU time
per request (``time.process_time``, so waiting on PostgreSQL does not count) and, with
``--top N``, the top entries of a cProfile of another ``--requests`` requests, by
cumulative and by own time. The database is dropped at the end.

The cases are bench/serving.py's, less the proxy hop: the first page, ``?q=video`` and
a cursor page of the gallery (anonymous), and the gateway's ``GET /api/jobs/{id}`` for a
queued job. Compare the CPU figures between two commits; the profile says why.

Usage::

    .venv/bin/python bench/request_profile.py                         # 10,000 rows, 300 requests
    .venv/bin/python bench/request_profile.py --top 25 --case job     # and a profile of one case
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
import listing

from videoforge.gallery.app import create_app as gallery_app
from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.gateway.app import create_app as gateway_app
from videoforge.infra.db import create_engine, session_scope
from videoforge.infra.logging import configure_logging
from videoforge.infra.runtime import build_infra
from videoforge.jobs.service import create_job
from videoforge.migrations import upgrade
from videoforge.settings import Settings

CASES = ("first", "search", "cursor", "job")


async def _load(url: str, rows: int) -> None:
    engine = create_engine(url, pool_size=2)
    try:
        await listing.load(engine, rows)
    finally:
        await engine.dispose()


async def _get(app: ASGIApp, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """``GET path`` straight into the ASGI app: no client, no sockets, so the time
    measured is the app's alone."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [
            (b"host", b"bench"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    status = 0
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


async def _drive(app: ASGIApp, path: str, headers: dict[str, str], n: int) -> float:
    """CPU seconds per request over ``n`` requests."""
    start = time.process_time()
    for _ in range(n):
        status, body = await _get(app, path, headers)
        if status != 200:
            raise SystemExit(f"{path}: {status} {body[:200]!r}")
    return (time.process_time() - start) / n


def _top(profile: cProfile.Profile, sort: str, n: int) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(sort).print_stats(n)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start:])


async def run(url: str, data_dir: Path, args: argparse.Namespace) -> None:
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=url,
        VIDEOFORGE_DATA_DIR=data_dir,
        VIDEOFORGE_ENV="test",
        JWT_SECRET=uuid.uuid4().hex * 2,
        LOG_LEVEL=args.log_level,
        RATE_LIMITS="off",
    )
    configure_logging(settings, service="bench", stream=io.StringIO())
    infra = await build_infra(settings, with_signing_key=True)
    assert infra.signing_key is not None
    issuer = TokenIssuer.from_settings(settings, key=infra.signing_key)
    user = "bench-user"
    async with session_scope(infra.sessions) as session:
        job = await create_job(
            session, user_id=user, input_source="https://media.example.com/bench.mp4"
        )
    token = issuer.issue_access(user, username="bench")
    auth = {"Authorization": f"Bearer {token}"}
    gallery = gallery_app(settings, infra)
    gateway = gateway_app(settings, infra)
    try:
        first = json.loads((await _get(gallery, "/api/gallery/videos", {}))[1])
        cases = {
            "first": (gallery, "/api/gallery/videos", {}),
            "search": (gallery, "/api/gallery/videos?q=video", {}),
            "cursor": (gallery, f"/api/gallery/videos?cursor={first['next_cursor']}", {}),
            "job": (gateway, f"/api/jobs/{job.id}", auth),
        }
        chosen = args.case or list(CASES)
        print(f"{args.rows:,} rows; {args.requests} requests x {args.rounds} rounds; CPU ms/req")
        for name in chosen:
            app, path, headers = cases[name]
            await _drive(app, path, headers, 20)  # warm-up
            cpu = [await _drive(app, path, headers, args.requests) for _ in range(args.rounds)]
            print(f"  {name:<7} {statistics.median(cpu) * 1000:6.2f}", flush=True)
            if args.top:
                profile = cProfile.Profile(time.process_time)  # CPU, not waits
                profile.enable()
                await _drive(app, path, headers, args.requests)
                profile.disable()
                for sort in ("cumulative", "tottime"):
                    print(f"--- {name}: top {args.top} by {sort}")
                    print(_top(profile, sort, args.top))
    finally:
        await infra.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", action="append", choices=CASES)
    parser.add_argument("--top", type=int, default=0, help="print a profile's top N entries")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--database", help="an already loaded database (kept)")
    args = parser.parse_args()
    name = args.database or asyncio.run(_common.create_database("vf_profile"))
    url = f"{_common.SERVER}/{name}"
    try:
        if not args.database:
            upgrade(url)
            asyncio.run(_load(url, args.rows))
        with tempfile.TemporaryDirectory(prefix="vf-profile-") as tmp:
            asyncio.run(run(url, Path(tmp), args))
    finally:
        if not args.database:
            asyncio.run(_common.drop_database(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
