"""The job's own processing choices reach the pipeline through a real worker."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from videoforge.infra.db import session_scope
from videoforge.jobs import create_job, enqueue
from videoforge.messages import JobStatus
from videoforge.processor import pipeline, runner

from .conftest import Stack, running_worker

S = JobStatus


@pytest.mark.parametrize("stack_env", ["embedded"], indirect=True)
@pytest.mark.parametrize("normalise", [False, True])
async def test_worker_passes_the_jobs_loudness_choice(
    stack: Stack, clip: Path, monkeypatch: pytest.MonkeyPatch, normalise: bool
) -> None:
    seen: list[Any] = []
    real = pipeline.process_file

    async def recording(*args: Any, **kwargs: Any) -> pipeline.PipelineResult:
        seen.append(kwargs.get("loudness_normalization"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "process_file", recording)
    key = await stack.upload(clip)
    async with session_scope(stack.infra.sessions) as session:
        job = await create_job(
            session,
            user_id="u1",
            input_source=key,
            video_id=uuid.uuid4(),
            loudness_normalization=normalise,
        )
    await enqueue(stack.infra.queues, job.id, sessions=stack.infra.sessions)
    async with running_worker(stack.infra):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert seen == [normalise]


@pytest.mark.parametrize("stack_env", ["embedded"], indirect=True)
async def test_the_chunking_decisions_probe_is_the_pipelines_own(stack: Stack, clip: Path) -> None:
    """With chunking on, a video too short to split is probed once: the pipeline uses
    the probe the chunking decision made instead of running ffprobe again."""
    assert stack.infra.settings.chunk_min_seconds > 0
    probes: list[list[str]] = []
    remove = runner.observe_spawns(
        lambda argv: probes.append(argv) if "-show_streams" in argv else None
    )
    try:
        key = await stack.upload(clip)
        async with session_scope(stack.infra.sessions) as session:
            job = await create_job(session, user_id="u1", input_source=key, video_id=uuid.uuid4())
        await enqueue(stack.infra.queues, job.id, sessions=stack.infra.sessions)
        async with running_worker(stack.infra):
            done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
    finally:
        remove()
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert len(probes) == 1
