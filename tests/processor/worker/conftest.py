"""A real processing stack for worker tests, parametrised over two backend sets:

- ``embedded``: SQLite, the database queue, LocalStorage in a temp dir;
- ``aws``: PostgreSQL, SQS and S3 on the moto server (boto3 over loopback HTTP).

Visibility timeouts are short (2 s) so redeliveries happen within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra, build_infra
from videoforge.jobs import Job, create_job, enqueue
from videoforge.messages import JobEvent, JobStatus
from videoforge.processor.worker import Worker
from videoforge.settings import Settings, load_settings

from .video_server import VideoServer

VISIBILITY = 2
MAX_RECEIVES = 3


def make_clip(path: Path, *, seconds: float = 2, size: str = "320x240", rate: int = 25) -> Path:
    """A tiny real video (test pattern + tone) made by ffmpeg."""
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={size}:r={rate}:d={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:d={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-shortest",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that processing is still running seconds after it started (for kill,
    shutdown and cancel tests): about 8 s of transcoding on an idle 2-core machine, more
    under load. Small frames keep the cost of making it down; the tests stop it early."""
    return make_clip(
        tmp_path_factory.mktemp("clips") / "long.mp4", seconds=90, size="640x360", rate=25
    )


@dataclass
class Stack:
    name: str
    env: dict[str, str]
    settings: Settings
    infra: Infra
    tmp: Path
    seen_events: list[JobEvent] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return self.settings.work_dir

    def with_settings(self, **overrides: Any) -> Settings:
        return load_settings(**{**self.env, **overrides})

    async def upload(self, path: Path, key: str | None = None) -> str:
        key = key or f"originals/u1/{uuid.uuid4().hex}/source"
        await self.infra.storage.put_file(key, path, content_type="video/mp4")
        return key

    async def new_job(self, source: str, *, send: bool = True, user_id: str = "u1") -> Job:
        async with session_scope(self.infra.sessions) as session:
            job = await create_job(
                session, user_id=user_id, input_source=source, video_id=uuid.uuid4()
            )
        if send:
            await enqueue(self.infra.queues, job.id, sessions=self.infra.sessions)
        return job

    async def job(self, job_id: uuid.UUID) -> Job:
        async with self.infra.sessions() as session:
            job = await session.get(Job, job_id, populate_existing=True)
        assert job is not None
        return job

    async def wait_status(
        self, job_id: uuid.UUID, statuses: Iterable[JobStatus], *, timeout: float = 60
    ) -> Job:
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(job_id)
            if job.status in wanted:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job still {job.status} after {timeout}s, wanted {wanted}")
            await asyncio.sleep(0.05)

    async def events(self, job_id: uuid.UUID | None = None) -> list[JobEvent]:
        """Drain the events queue (deleting what it reads); returns all seen so far."""
        while True:
            batch = await self.infra.queues.events.receive(
                max_messages=10, wait_seconds=0.2, visibility_timeout=30
            )
            if not batch:
                break
            for message in batch:
                self.seen_events.append(JobEvent.model_validate_json(message.body))
                await self.infra.queues.events.delete(message.receipt)
        return [e for e in self.seen_events if job_id is None or e.job_id == job_id]

    async def keys(self, prefix: str) -> list[str]:
        return sorted([info.key async for info in self.infra.storage.list(prefix)])

    async def jobs_queue_empty(self) -> bool:
        """No message visible or in flight (peeks by receiving with a zero wait)."""
        got = await self.infra.queues.jobs.receive(
            max_messages=1, wait_seconds=0, visibility_timeout=1
        )
        for message in got:
            await self.infra.queues.jobs.change_visibility(message.receipt, 0)
        return not got

    def workdirs(self) -> list[Path]:
        root = self.work_dir
        return sorted(root.iterdir()) if root.exists() else []

    def spawn_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """``videoforge worker`` as a real child process on this stack."""
        full = {**os.environ, **self.env, **env}
        full.pop("PYTEST_CURRENT_TEST", None)
        return subprocess.Popen(
            [sys.executable, "-m", "videoforge", "worker"],
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"worker-{time.monotonic_ns()}.log", "wb"),
        )


def _sqs_env(moto_endpoint: str, unique: str) -> dict[str, str]:
    import boto3

    from videoforge.infra.queue.sqs import ensure_sqs_queues

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    jobs_url, _ = asyncio.run(ensure_sqs_queues(sqs, f"jobs-{unique}", MAX_RECEIVES, VISIBILITY))
    events_url, _ = asyncio.run(ensure_sqs_queues(sqs, f"events-{unique}", 10, 30))
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"vf-{unique}"
    s3.create_bucket(Bucket=bucket)
    return {
        "SQS_QUEUE_URL": jobs_url,
        "SQS_EVENTS_QUEUE_URL": events_url,
        "S3_BUCKET_NAME": bucket,
        "S3_PATH_STYLE": "true",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture(params=["embedded", "aws"])
def stack_env(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> dict[str, str]:
    """Environment of one backend set (also what a worker subprocess gets)."""
    env = {
        "VIDEOFORGE_ENV": "test",
        "VIDEOFORGE_DATA_DIR": str(tmp_path / "data"),
        "TEMP_DIR": str(tmp_path / "work"),
        "QUEUE_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "QUEUE_MAX_RECEIVES": str(MAX_RECEIVES),
        "MAX_CONCURRENT_JOBS": "1",
        "FFMPEG_THREADS": "1",
        "SHUTDOWN_GRACE_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        "STACK": request.param,
    }
    if request.param == "embedded":
        env["DATABASE_URL"] = request.getfixturevalue("sqlite_url")
    else:
        env["DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env.update(_sqs_env(request.getfixturevalue("moto_endpoint"), unique))
    return env


@pytest.fixture
async def stack(stack_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Stack]:
    settings = load_settings(**stack_env)
    infra = await build_infra(settings)
    try:
        yield Stack(stack_env["STACK"], stack_env, settings, infra, tmp_path)
    finally:
        await infra.aclose()


@contextlib.asynccontextmanager
async def running_worker(
    infra: Infra, **kwargs: Any
) -> AsyncIterator[tuple[Worker, asyncio.Event, asyncio.Task[None]]]:
    """An in-process worker for the duration of the block, stopped (gracefully) after."""
    kwargs.setdefault("receive_wait", 0.5)
    kwargs.setdefault("retry_backoff_base", 1)
    worker = Worker(infra, **kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker, stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


def processes_under(root: Path) -> list[int]:
    """Pids of processes (ffmpeg) whose working directory or arguments are under ``root``."""
    needle = str(root)
    found = []
    for proc in psutil.process_iter(["cwd", "cmdline"]):
        cwd = proc.info["cwd"] or ""
        cmdline = " ".join(proc.info["cmdline"] or ())
        if cwd.startswith(needle) or needle in cmdline:
            found.append(proc.pid)
    return found


@pytest.fixture
def video_server(clip: Path) -> Iterator[VideoServer]:
    """``clip`` served on loopback, for import jobs."""
    server = VideoServer(clip.read_bytes())
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
