"""ETA and queue position of real jobs, with a real worker whose ffmpeg is held."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import psutil
import pytest

from videoforge.jobs.estimates import Estimate, estimate
from videoforge.jobs.models import Job
from videoforge.jobs.service import request_cancel
from videoforge.messages import JobStatus as S

from .conftest import Stack, processes_under, running_worker

pytestmark = pytest.mark.slow


async def _estimate(stack: Stack, job_id: uuid.UUID) -> tuple[Job, Estimate]:
    async with stack.infra.sessions() as session:
        job = await session.get(Job, job_id, populate_existing=True)
        assert job is not None
        return job, await estimate(session, job)


async def _progress_at_least(stack: Stack, job_id: uuid.UUID, value: int) -> Job:
    deadline = time.monotonic() + 120
    while True:
        job = await stack.job(job_id)
        # A fast machine can carry the job past PROCESSING between two polls.
        if job.progress >= value and job.status in {S.PROCESSING, S.UPLOADING, S.COMPLETED}:
            return job
        assert job.status in {S.PENDING, S.DOWNLOADING, S.PROCESSING}, job.status
        assert time.monotonic() < deadline, f"progress stuck at {job.progress}"
        await asyncio.sleep(0.1)


def _ffmpeg(stack: Stack) -> list[psutil.Process]:
    return [p for p in map(psutil.Process, processes_under(stack.work_dir)) if p.name() == "ffmpeg"]


@pytest.mark.parametrize("stack_env", ["embedded"], indirect=True)
async def test_eta_falls_as_progress_rises_and_queue_positions_move_up(
    stack: Stack, long_clip: Path
) -> None:
    source = await stack.upload(long_clip)
    first, second, third = [await stack.new_job(source) for _ in range(3)]
    async with running_worker(stack.infra, concurrency=1):
        await _progress_at_least(stack, first.id, 5)
        # Progress can move (download, probe) a moment before the ladder's ffmpeg starts.
        deadline = time.monotonic() + 30
        while not (held := _ffmpeg(stack)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert held, "the ladder's ffmpeg is running"
        for proc in held:
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            job, early = await _estimate(stack, first.id)
            _, waiting_1 = await _estimate(stack, second.id)
            _, waiting_2 = await _estimate(stack, third.id)
        finally:
            for proc in held:
                os.kill(proc.pid, signal.SIGCONT)
        assert early.eta_seconds is not None
        assert early.eta_seconds > 0
        assert early.queue_position is None  # running, not queued
        assert (waiting_1.queue_position, waiting_2.queue_position) == (1, 2)
        assert waiting_1.eta_seconds is not None
        assert waiting_2.eta_seconds is not None
        assert early.eta_seconds < waiting_1.eta_seconds < waiting_2.eta_seconds

        await _progress_at_least(stack, first.id, job.progress + 40)
        for proc in _ffmpeg(stack):
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            _, later = await _estimate(stack, first.id)
        finally:
            for proc in _ffmpeg(stack):
                os.kill(proc.pid, signal.SIGCONT)
        assert later.eta_seconds is not None
        assert later.eta_seconds < early.eta_seconds

        # The first finishes: the second runs, and the third moves up to first in line.
        await stack.wait_status(first.id, {S.COMPLETED}, timeout=180)
        await stack.wait_status(second.id, {S.DOWNLOADING, S.PROCESSING}, timeout=60)
        done, finished = await _estimate(stack, first.id)
        assert done.status is S.COMPLETED
        assert finished.eta_seconds == 0
        _, moved = await _estimate(stack, third.id)
        assert moved.queue_position == 1
        async with stack.infra.sessions() as session:
            for job_id in (second.id, third.id):
                await request_cancel(session, job_id)
            await session.commit()
