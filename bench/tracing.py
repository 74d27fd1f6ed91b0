"""Benchmark: a gallery listing request with tracing off, on, and configured but off.

Each mode runs in a process of its own (a tracer provider is process-wide), on the same
seeded SQLite database: the gallery app in process, requests through httpx's ASGI
transport (no sockets, so the figure is the app's own cost), ``--requests`` per round.
Modes alternate for ``--rounds`` rounds:

- ``off``: no OTEL_* variable, the default;
- ``on``: OTEL_EXPORTER_OTLP_ENDPOINT set (to a loopback port where nothing listens):
  spans are made, batched and sent by the SDK's thread, and refused;
- ``disabled``: an endpoint set but OTEL_SDK_DISABLED=true.

It prints the median time per request of each mode and the ratios to ``off``.

Usage::

    .venv/bin/python bench/tracing.py
    .venv/bin/python bench/tracing.py --requests 500 --rounds 5 --videos 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


async def _serve_round(data_dir: Path, requests: int) -> float:
    import httpx

    from videoforge.gallery.app import create_app
    from videoforge.infra import tracing
    from videoforge.infra.runtime import build_infra
    from videoforge.settings import Settings

    # As a service starts: on only when the environment asks (the "on" mode names an
    # endpoint where nothing listens, so batches are made and sent, and dropped).
    tracing.configure("bench")
    settings = Settings(
        VIDEOFORGE_DATA_DIR=data_dir, DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'v.db'}"
    )
    infra = await build_infra(settings)
    app = create_app(settings, infra)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(20):  # warm-up
            (await client.get("/api/gallery/videos")).raise_for_status()
        start = time.perf_counter()
        for _ in range(requests):
            (await client.get("/api/gallery/videos")).raise_for_status()
        elapsed = time.perf_counter() - start
    await infra.aclose()
    return elapsed / requests


async def _seed(data_dir: Path, videos: int) -> None:
    from videoforge import migrations
    from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
    from videoforge.infra.db import create_engine, session_factory, session_scope

    url = f"sqlite+aiosqlite:///{data_dir / 'v.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    async with session_scope(session_factory(engine)) as session:
        for i in range(videos):
            session.add(
                GalleryVideo(
                    id=uuid.uuid4(),
                    user_id=f"user-{i % 17}",
                    title=f"Benchmark video {i}",
                    description="",
                    visibility=Visibility.PUBLIC,
                    status=VideoStatus.READY,
                    renditions=[],
                    thumbnail_key=f"outputs/{uuid.uuid4()}/thumbnail.jpg",
                )
            )
    await engine.dispose()


MODES = {
    "off": {},
    "on": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    "disabled": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        per_request = asyncio.run(_serve_round(Path(args.child), args.requests))
        print(json.dumps({"per_request": per_request}))
        return 0
    with tempfile.TemporaryDirectory(prefix="vf-bench-tracing-") as tmp:
        data = Path(tmp)
        asyncio.run(_seed(data, args.videos))
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        base["LOG_LEVEL"] = "WARNING"
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode, extra in MODES.items():
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(data),
                     "--requests", str(args.requests)],
                    env={**base, **extra}, capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                times[mode].append(json.loads(out.strip().splitlines()[-1])["per_request"])
        off = statistics.median(times["off"])
        print(f"listing (20 items, {args.videos} videos), {args.requests} requests x {args.rounds}")
        for mode in MODES:
            median = statistics.median(times[mode])
            print(f"  {mode:<9} {median * 1000:7.3f} ms/request   {median / off:5.2f}x off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
