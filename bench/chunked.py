"""Benchmark: one long video across several workers (issue 15, section 4).

Generates a 720p30 H.264 source with a sine tone (testsrc2, libx264 ``veryfast``, 2 s
GOP), then, each on a fresh embedded stack (SQLite, the database queue, the local object
store; real ``videoforge worker`` processes, ``FFMPEG_THREADS=1``), times one job from
its message to ``COMPLETED``:

(a) unchunked, one worker pinned to one core (``taskset -c 0``);
(b) chunked, the same one worker: what splitting costs in total CPU time;
(c) chunked, two workers each pinned to its own core (``taskset -c 0`` / ``-c 1``).

Remux is off in all three (``REMUX_MAX_GOP_SECONDS=0``): a chunked job always encodes
its top rung, and the source here would otherwise be copied in (a).

Printed: each run's wall time and the CPU time (user + system) of the workers and their
ffmpeg children, the wall-clock speed-up (c)/(a) (goal >= 1.7) and the CPU ratio
(c)/(a) (goal within 5 %), the cost of each step of the chunked job (the parent's split
and shared encode, every part, the stitch, from the job rows), and from those the time
the same job would take on N workers.

Usage::

    .venv/bin/python bench/chunked.py                       # 120 s source, parts of 30 s
    .venv/bin/python bench/chunked.py --seconds 60 --part 15 --size 1280x720
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from sqlalchemy import select

from videoforge import migrations
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import build_infra
from videoforge.jobs import Job, create_job, enqueue
from videoforge.messages import JobStatus
from videoforge.settings import load_settings

S = JobStatus


def make_clip(path: Path, seconds: int, size: str) -> Path:
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:d={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    name: str
    wall: float
    cpu: float
    job: Job
    parts: list[Job]


def _workers(env: dict[str, str], data: Path, cores: list[int]) -> list[subprocess.Popen[bytes]]:
    """One ``videoforge worker`` pinned to each of ``cores``."""
    return [
        subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, "-m", "videoforge", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(data / f"worker-{core}.log").open("wb"),
        )
        for core in cores
    ]


async def one_run(
    name: str, clip: Path, root: Path, cores: list[int], chunk: dict[str, str]
) -> Run:
    """One job on a fresh embedded stack with one worker per core in ``cores``."""
    data = root / name
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data / 'videoforge.db'}"
    migrations.upgrade(url)
    env = {
        **os.environ,
        "VIDEOFORGE_ENV": "development",
        "VIDEOFORGE_DATA_DIR": str(data),
        "DATABASE_URL": url,
        "TEMP_DIR": str(data / "work"),
        "FFMPEG_THREADS": "1",
        "MAX_CONCURRENT_JOBS": "1",
        "LOG_LEVEL": "WARNING",
        # A chunked job is never remuxed: the unchunked run must not be either, or the
        # comparison measures the remux (docs/benchmarks.md) instead of the split.
        "REMUX_MAX_GOP_SECONDS": "0",
        **chunk,
    }
    settings = load_settings(**{k: v for k, v in env.items() if k.isupper()})
    infra = await build_infra(settings)
    try:
        key = f"originals/u1/{uuid.uuid4().hex}/source"
        await infra.storage.put_file(key, clip, content_type="video/mp4")
        workers = _workers(env, data, cores)
        await asyncio.sleep(3)  # both workers up and polling before the job exists
        cpu_before = _cpu()
        async with session_scope(infra.sessions) as session:
            job = await create_job(session, user_id="u1", input_source=key, video_id=uuid.uuid4())
        started = time.monotonic()
        await enqueue(infra.queues, job.id, sessions=infra.sessions)
        while True:
            async with infra.sessions() as session:
                row = await session.get(Job, job.id, populate_existing=True)
            assert row is not None
            if row.status.is_final:
                break
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
        cpu = _cpu() - cpu_before
        if row.status is not S.COMPLETED:
            raise SystemExit(f"{name}: job ended {row.status}: {row.error_text}")
        async with infra.sessions() as session:
            parts = list(
                (
                    await session.execute(
                        select(Job).where(Job.parent_id == job.id).order_by(Job.part_index)
                    )
                ).scalars()
            )
        return Run(name, wall, cpu, row, parts)
    finally:
        await infra.aclose()


def _span(job: Job) -> float:
    assert job.started_at is not None
    assert job.finished_at is not None
    return (job.finished_at - job.started_at).total_seconds()


def per_part(run: Run) -> tuple[float, float, list[float], float]:
    """(split, shared encode, each part's wall, stitch) of a chunked run on one core: the
    split ends when the parts are written, the parent's shared encode when the first part
    starts (one worker, one slot), the stitch is what is left after the last part."""
    parts = [_span(p) for p in run.parts]
    written = min(p.created_at for p in run.parts)
    first = min(p.started_at for p in run.parts if p.started_at)
    last = max(p.finished_at for p in run.parts if p.finished_at)
    assert run.job.started_at is not None
    assert run.job.finished_at is not None
    split = (written - run.job.started_at).total_seconds()
    shared = (first - written).total_seconds()
    stitch = (run.job.finished_at - last).total_seconds()
    return split, shared, parts, stitch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--part", type=int, default=30, help="CHUNK_SECONDS")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--rounds", type=int, default=1, help="order alternated each round")
    args = parser.parse_args()
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        raise SystemExit("needs taskset and two cores")
    root = Path(tempfile.mkdtemp(prefix="vf-chunked-"))
    try:
        clip = make_clip(root / "source.mp4", args.seconds, args.size)
        off = {"CHUNK_MIN_SECONDS": "0"}
        on = {"CHUNK_MIN_SECONDS": str(args.part), "CHUNK_SECONDS": str(args.part)}
        plan = [
            ("a-unchunked-1core", [0], off),
            ("b-chunked-1core", [0], on),
            ("c-chunked-2cores", [0, 1], on),
        ]
        rounds: list[list[Run]] = []
        for number in range(args.rounds):
            order = plan if number % 2 == 0 else plan[::-1]  # alternate: load drifts
            done = {
                name: asyncio.run(one_run(f"{name}-{number}", clip, root, cores, env))
                for name, cores, env in order
            }
            rounds.append([done[name] for name, _, _ in plan])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"source: {args.seconds} s {args.size}p30, parts of {args.part} s")
    for runs in rounds:
        for run in runs:
            figures = f"wall {run.wall:7.1f} s   cpu {run.cpu:7.1f} s   parts {len(run.parts)}"
            print(f"  {run.name:22} {figures}")
    med = [Run(r[0].name, median(x.wall for x in r), median(x.cpu for x in r), r[0].job, r[0].parts)
           for r in zip(*rounds, strict=True)]  # fmt: skip
    plain, single, double = med
    print(f"medians of {len(rounds)} round(s):")
    ratios = [
        ("wall-clock speed-up, (a) / (c)", plain.wall / double.wall, "goal >= 1.7"),
        ("total CPU, (c) / (a)", double.cpu / plain.cpu, "goal <= 1.05"),
        ("total CPU, (b) / (a)", single.cpu / plain.cpu, ""),
    ]
    for label, value, goal in ratios:
        print(f"{label:32} {value:6.3f}  {goal}")
    single = rounds[-1][1]
    split, shared, parts, stitch = per_part(single)
    print(
        f"per step (chunked, one core): split {split:.1f} s, shared encode (audio, stills)"
        f" {shared:.1f} s, stitch {stitch:.1f} s"
    )
    for index, cost in enumerate(parts):
        print(f"  part {index}: {cost:.1f} s")
    # N workers: the split runs first; the shared encode and the parts are then spread
    # over N workers (longest first onto the least loaded); the stitch runs last.
    units = sorted([shared, *parts], reverse=True)
    print("worked out for N workers (from the one-core costs above):")
    for n in (1, 2, 4, 10):
        loads = [0.0] * n
        for cost in units:
            loads[loads.index(min(loads))] += cost
        total = split + max(loads) + stitch
        print(f"  N={n:2}: {total:7.1f} s   speed-up {plain.wall / total:.2f}x")
    rate = sum(parts) / args.seconds  # one-core seconds of parts per source second
    count = math.ceil(2 * 3600 / 90)
    print(
        f"a 2-hour source: {count} parts of 90 s, {rate * 90:.0f} s each on one core;"
        f" 10 workers encode them in about {math.ceil(count / 10) * rate * 90 / 60:.0f} min,"
        f" one in {count * rate * 90 / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
