"""Failures: bad media fails once; transient failures retry with backoff into the DLQ;
cancellation stops ffmpeg; temp dirs are removed in every case."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from videoforge.infra.db import session_scope
from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import request_cancel
from videoforge.messages import JobStatus

from .conftest import MAX_RECEIVES, Stack, processes_under, running_worker

S = JobStatus


async def test_bad_media_fails_once_with_reason(stack: Stack, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-video.mp4"
    bogus.write_text("<html><body>this is not a video</body></html>\n" * 50)
    key = await stack.upload(bogus)
    job = await stack.new_job(key)
    async with running_worker(stack.infra):
        failed = await stack.wait_status(job.id, {S.FAILED, S.COMPLETED}, timeout=60)
        # Well past a visibility timeout: a retried message would have been claimed again.
        await asyncio.sleep(3)
        after = await stack.job(job.id)
    assert failed.status is S.FAILED
    assert failed.error_code in {"unsupported_format", "corrupt_media"}
    assert failed.error_text
    assert after.attempts == 1  # never retried
    assert after.event_seq == failed.event_seq
    events = await stack.events(job.id)
    assert events[-1].status is S.FAILED
    assert events[-1].error == failed.error_text
    assert [e.status for e in events].count(S.FAILED) == 1
    assert await stack.jobs_queue_empty()
    assert await stack.infra.queues.jobs.dead_letters() == []
    assert await stack.keys(output_prefix(job.id)) == []
    assert stack.workdirs() == []


async def test_transient_failures_back_off_then_dead_letter(stack: Stack) -> None:
    # The source key does not exist: every attempt fails with a storage error.
    job = await stack.new_job("originals/u1/missing/source")
    started = time.monotonic()
    async with running_worker(stack.infra, retry_backoff_base=1):
        failed = await stack.wait_status(job.id, {S.FAILED, S.COMPLETED}, timeout=60)
        elapsed = time.monotonic() - started
        dead = []
        for _ in range(150):
            dead = await stack.infra.queues.jobs.dead_letters()
            if dead:
                break
            await asyncio.sleep(0.1)
    assert failed.status is S.FAILED
    assert failed.error_code == "gave_up"
    assert failed.error_text is not None
    assert failed.error_text.startswith(f"gave up after {MAX_RECEIVES} attempts")
    assert failed.attempts == MAX_RECEIVES
    # Backoff 1 s then 2 s between the three attempts.
    assert elapsed >= 3
    assert len(dead) == 1
    assert str(job.id) in dead[0].body
    events = await stack.events(job.id)
    statuses = [e.status for e in events]
    assert statuses.count(S.DOWNLOADING) == MAX_RECEIVES
    assert statuses.count(S.PENDING) == MAX_RECEIVES - 1  # given back between attempts
    assert statuses[-1] is S.FAILED
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert stack.workdirs() == []


async def test_cancel_stops_ffmpeg_and_ends_cancelled(stack: Stack, long_clip: Path) -> None:
    key = await stack.upload(long_clip)
    job = await stack.new_job(key)
    async with running_worker(stack.infra):
        await stack.wait_status(job.id, {S.PROCESSING}, timeout=60)
        # Let ffmpeg get going (and outlive a visibility timeout: the heartbeat keeps it).
        await asyncio.sleep(2.5)
        assert processes_under(stack.work_dir), "ffmpeg should be running"
        async with session_scope(stack.infra.sessions) as session:
            flagged = await request_cancel(session, job.id)
        assert flagged.cancel_requested is True
        asked = time.monotonic()
        cancelled = await stack.wait_status(
            job.id, {S.CANCELLED, S.COMPLETED, S.FAILED}, timeout=30
        )
        took = time.monotonic() - asked
        await asyncio.sleep(0.5)
        left = processes_under(stack.work_dir)
    assert cancelled.status is S.CANCELLED
    assert took < 8
    assert left == []
    assert cancelled.attempts == 1  # the heartbeat kept the message from coming back
    assert cancelled.error_code == "cancelled"
    events = await stack.events(job.id)
    assert events[-1].status is S.CANCELLED
    assert await stack.jobs_queue_empty()
    assert await stack.keys(output_prefix(job.id)) == []
    assert stack.workdirs() == []
