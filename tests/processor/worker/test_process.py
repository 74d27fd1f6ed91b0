"""The worker as a real ``videoforge worker`` process: SIGTERM, SIGKILL, start-up checks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from videoforge.infra.storage.keys import output_prefix
from videoforge.messages import JobStatus
from videoforge.processor.workdirs import workdir_prefix

from .conftest import Stack, processes_under, running_worker

S = JobStatus


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"worker did not exit within {timeout}s")
        await asyncio.sleep(0.05)
    return proc.returncode


@pytest.mark.slow
async def test_sigterm_requeues_and_exits_zero(stack: Stack, long_clip: Path) -> None:
    key = await stack.upload(long_clip)
    job = await stack.new_job(key)
    proc = stack.spawn_worker(SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        await stack.wait_status(job.id, {S.PROCESSING}, timeout=60)
        await asyncio.sleep(1)
        assert processes_under(stack.work_dir)
        proc.send_signal(signal.SIGTERM)
        code = await _wait_exit(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    requeued = await stack.job(job.id)
    assert requeued.status is S.PENDING
    assert requeued.claim_token is None
    # Visible at once (not after the 2 s visibility timeout): a zero-wait receive gets it.
    got = await stack.infra.queues.jobs.receive(
        max_messages=1, wait_seconds=0, visibility_timeout=30
    )
    assert len(got) == 1
    assert str(job.id) in got[0].body
    assert processes_under(stack.work_dir) == []
    assert stack.workdirs() == []
    events = await stack.events(job.id)
    assert events[-1].status is S.PENDING


@pytest.mark.slow
async def test_sigterm_lets_a_job_finish_within_grace(stack: Stack, clip: Path) -> None:
    key = await stack.upload(clip)
    job = await stack.new_job(key)
    proc = stack.spawn_worker(SHUTDOWN_GRACE_SECONDS="120")
    try:
        await stack.wait_status(job.id, {S.DOWNLOADING, S.PROCESSING}, timeout=60)
        proc.send_signal(signal.SIGTERM)
        code = await _wait_exit(proc, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    assert (await stack.job(job.id)).status is S.COMPLETED
    assert await stack.jobs_queue_empty()


@pytest.mark.slow
async def test_killed_worker_job_is_completed_by_another(stack: Stack, tmp_path: Path) -> None:
    from .conftest import make_clip

    medium = make_clip(tmp_path / "medium.mp4", seconds=8, size="320x240")
    key = await stack.upload(medium)
    job = await stack.new_job(key)
    proc = subprocess.Popen(
        [sys.executable, "-m", "videoforge", "worker"],
        env={**os.environ, **stack.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group, so the kill takes its ffmpeg too (as an instance loss would).
        start_new_session=True,
    )
    try:
        await stack.wait_status(job.id, {S.PROCESSING}, timeout=60)
        os.killpg(proc.pid, signal.SIGKILL)
        await _wait_exit(proc, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    orphan = await stack.job(job.id)
    assert orphan.status is S.PROCESSING
    leftovers = stack.workdirs()
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(workdir_prefix(job.id, proc.pid))

    async with running_worker(stack.infra):
        # Start-up removes the dead worker's temp dir.
        for _ in range(100):
            if not leftovers[0].exists():
                break
            await asyncio.sleep(0.05)
        assert not leftovers[0].exists()
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=120)
    assert done.status is S.COMPLETED, done.error_text
    assert done.attempts == 2
    assert await stack.jobs_queue_empty()
    assert stack.workdirs() == []
    keys = await stack.keys(output_prefix(job.id))
    assert f"{output_prefix(job.id)}hls/master.m3u8" in keys
    events = await stack.events(job.id)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert events[-1].status is S.COMPLETED


async def test_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIDEOFORGE_ENV": "test",
        "VIDEOFORGE_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    for name in ("SQS_QUEUE_URL", "S3_BUCKET_NAME", "DB_HOST"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "videoforge", "worker"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert b"videoforge migrate" in result.stderr


async def test_stale_workdirs_removed_at_start_but_not_live_ones(stack: Stack) -> None:
    import uuid

    root = stack.work_dir
    root.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = root / f"{workdir_prefix(uuid.uuid4(), dead.pid)}abc"
    live = root / f"{workdir_prefix(uuid.uuid4(), 1)}def"  # pid 1 is always alive
    unrelated = root / "not-a-job-dir"
    for d in (stale, live, unrelated):
        d.mkdir()
        (d / "file").write_bytes(b"x")
    async with running_worker(stack.infra):
        pass
    assert not stale.exists()
    assert live.exists()
    assert unrelated.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
async def test_worker_process_serves_metrics_and_stops_when_idle(stack: Stack, clip: Path) -> None:
    port = _free_port()
    key = await stack.upload(clip)
    job = await stack.new_job(key)
    proc = stack.spawn_worker(METRICS_PORT=str(port))
    try:
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
        assert done.status is S.COMPLETED
        async with httpx.AsyncClient() as client:
            text = ""
            for _ in range(50):
                try:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                    continue
                if 'videoforge_processor_jobs_finished_total{state="COMPLETED"} 1.0' in text:
                    break
                await asyncio.sleep(0.1)
        assert 'videoforge_processor_jobs_finished_total{state="COMPLETED"} 1.0' in text
        assert "videoforge_processor_transcode_seconds_count 1.0" in text
        assert 'videoforge_jobs{state="COMPLETED"} 1.0' in text
        # Unauthenticated, so on loopback only unless METRICS_HOST says otherwise.
        listening = {
            c.laddr.ip
            for c in psutil.Process(proc.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
        proc.send_signal(signal.SIGTERM)
        code = await _wait_exit(proc, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
