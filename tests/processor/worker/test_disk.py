"""A full disk is the machine's fault, never the media's: the job is handed back at once
(a fresh message, the attempt not counted), the worker reports itself unhealthy and takes
no job until it has room, and a worker with room completes the job. Real ffmpeg on a
size-capped directory (tmpfs, or RLIMIT_FSIZE on ffmpeg as the stand-in)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from videoforge.infra.runtime import Infra, build_infra
from videoforge.infra.storage.keys import import_key
from videoforge.jobs import Job
from videoforge.jobs.runs import ClaimOutcome
from videoforge.messages import JobStatus
from videoforge.processor import failures, resources
from videoforge.processor.resources import LocalResourceError
from videoforge.processor.run import JobRun
from videoforge.processor.worker import Worker

from ..conftest import CappedDir
from .conftest import MAX_RECEIVES, Stack, make_clip, running_worker
from .video_server import VideoServer

S = JobStatus


def disk_ok() -> float | None:
    return REGISTRY.get_sample_value("videoforge_worker_disk_ok")


@contextlib.asynccontextmanager
async def infra_with(stack: Stack, **settings: str) -> AsyncIterator[Infra]:
    """The stack's backends under other settings (another worker's machine)."""
    infra = await build_infra(stack.with_settings(**settings))
    try:
        yield infra
    finally:
        await infra.aclose()


@contextlib.asynccontextmanager
async def worker_on(stack: Stack, capped: CappedDir) -> AsyncIterator[None]:
    """A worker whose work dir is ``capped`` (room checked at 1x the source, no floor),
    in no hurry to take jobs again once it stopped for lack of room."""
    full = {"TEMP_DIR": str(capped.path), "WORK_DISK_FACTOR": "1", "WORK_DISK_FLOOR": "0"}
    async with (
        infra_with(stack, **full) as infra,
        running_worker(infra, disk_recheck=0.2, disk_cooldown=3600),
    ):
        yield


async def wait_for(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def released(stack: Stack, job_id: uuid.UUID, *, timeout: float = 90) -> Job:
    """Wait until the job was handed back for lack of room (PENDING, ``local_resource``);
    returns it as it was seen then (a worker may have taken it again since)."""
    seen: list[Job] = []

    async def check() -> bool:
        job = await stack.job(job_id)
        assert job.status is not S.FAILED, (job.error_code, job.error_text)
        seen.append(job)
        return job.status is S.PENDING and job.error_code == "local_resource"

    await wait_for(check, timeout=timeout, what="the job to be released")
    return seen[-1]


async def take_fresh_message(stack: Stack, job_id: uuid.UUID) -> None:
    """The job's message is visible now (no visibility timeout to wait out) and fresh
    (receive count 1: the released attempt did not bring it closer to the DLQ); it is
    put back for the next worker."""
    got = await stack.infra.queues.jobs.receive(
        max_messages=1, wait_seconds=1, visibility_timeout=30
    )
    assert len(got) == 1
    assert str(job_id) in got[0].body
    assert got[0].receive_count == 1
    await stack.infra.queues.jobs.change_visibility(got[0].receipt, 0)


@pytest.mark.slow
async def test_full_disk_hands_the_job_to_a_worker_with_room(
    stack: Stack, capped_dir: Callable[..., CappedDir], tmp_path: Path
) -> None:
    source = make_clip(tmp_path / "source.mp4", seconds=6, size="640x360")
    size = source.stat().st_size
    # The source fits, the ladder's ~1 MB of outputs does not.
    capped = capped_dir(size + 400 * 1024, per_file=150 * 1024)
    key = await stack.upload(source)
    job = await stack.new_job(key)
    async with worker_on(stack, capped):
        given_back = await released(stack, job.id)
        assert disk_ok() == 0.0
        await take_fresh_message(stack, job.id)
        # Unhealthy: it does not take the job (nor any other) again.
        await asyncio.sleep(1.5)
        still = await stack.job(job.id)
    assert given_back.attempts == 0  # the machine's attempt did not count
    assert given_back.claim_token is None
    reason = "no_space" if capped.how == "tmpfs" else "file_too_large"
    assert given_back.error_text is not None
    assert reason in given_back.error_text
    assert still.status is S.PENDING
    assert still.attempts == 0
    statuses = [e.status for e in await stack.events(job.id)]
    assert S.PROCESSING in statuses  # it failed in ffmpeg, not before
    assert S.FAILED not in statuses
    assert statuses[-1] is S.PENDING
    assert list(capped.path.iterdir()) == []

    async with running_worker(stack.infra):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=120)
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert done.attempts == 1
    assert done.error_code is None
    assert await stack.jobs_queue_empty()
    assert await stack.infra.queues.jobs.dead_letters() == []


async def test_too_little_room_declines_before_downloading(stack: Stack, clip: Path) -> None:
    key = await stack.upload(clip)
    job = await stack.new_job(key)
    # Needs a billion times the source's size: no disk has that.
    async with (
        infra_with(stack, WORK_DISK_FACTOR="1e9") as infra,
        running_worker(infra, disk_recheck=0.2),
    ):
        declined = await released(stack, job.id, timeout=60)

        async def declined_twice() -> bool:
            statuses = [e.status for e in await stack.events(job.id)]
            return statuses.count(S.DOWNLOADING) >= 2

        # Released at once: the only worker gets it straight back (and declines again,
        # then backs off so that it does not spin on it).
        await wait_for(declined_twice, timeout=15, what="a second decline")
        # Declining is not a fault: the worker still takes jobs that fit.
        assert disk_ok() == 1.0
    # (Stopping the worker may have caught it in a claim: that requeue is a shutdown's.)
    assert (await stack.job(job.id)).status is S.PENDING
    assert declined.attempts == 0
    assert declined.error_text is not None
    assert "declined" in declined.error_text
    statuses = [e.status for e in await stack.events(job.id)]
    assert S.PROCESSING not in statuses  # never got past the room check
    assert set(statuses) == {S.DOWNLOADING, S.PENDING}
    assert stack.workdirs() == []


async def test_no_job_is_taken_until_there_is_room(
    stack: Stack, capped_dir: Callable[..., CappedDir], clip: Path
) -> None:
    capped = capped_dir(2 * 1024 * 1024)
    if capped.how != "tmpfs":
        pytest.skip("needs a real size-capped filesystem to fill")
    ballast = capped.path / "ballast"
    ballast.write_bytes(b"\0" * (1536 * 1024))
    key = await stack.upload(clip)
    job = await stack.new_job(key)
    async with (
        infra_with(stack, TEMP_DIR=str(capped.path), WORK_DISK_FLOOR=str(1024 * 1024)) as infra,
        running_worker(infra, disk_recheck=0.2),
    ):
        await wait_for(_async(lambda: disk_ok() == 0.0), timeout=10, what="unhealthy")
        await asyncio.sleep(1.5)
        waiting = await stack.job(job.id)
        assert waiting.status is S.PENDING
        assert waiting.attempts == 0  # never even claimed
        ballast.unlink()
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
        assert disk_ok() == 1.0
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert done.attempts == 1


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def test_an_import_too_large_for_the_disk_is_declined_on_its_content_length(
    stack: Stack, video_server: VideoServer
) -> None:
    job = await stack.new_job(f"http://127.0.0.1:{video_server.port}/video.mp4")
    async with (
        infra_with(
            stack, IMPORT_ALLOWED_PORTS=str(video_server.port), WORK_DISK_FACTOR="1e9"
        ) as infra,
        running_worker(infra, fetch_allow_addresses=["127.0.0.1"], disk_recheck=0.2),
    ):
        declined = await released(stack, job.id, timeout=60)
    assert declined.attempts == 0
    assert declined.error_text is not None
    assert "declined" in declined.error_text
    assert video_server.hits >= 1  # declined on the headers, each time it came back
    assert await stack.keys(import_key("u1", job.video_id, job.id)) == []
    statuses = [e.status for e in await stack.events(job.id)]
    assert S.PROCESSING not in statuses
    assert stack.workdirs() == []


async def test_an_unverified_local_failure_is_released_at_once_but_counts(
    stack: Stack,
) -> None:
    # ffmpeg said "quota exceeded": nothing here can confirm it, and a file could have
    # made it up. Released at once (never corrupt_media), but counted, to the last receive.
    job = await stack.new_job("originals/u1/x/source")
    worker = Worker(stack.infra)
    failure = LocalResourceError(
        "disk_quota", "ffmpeg could not write: Disk quota exceeded", verified=False
    )
    for receive in range(1, MAX_RECEIVES + 1):
        got = await stack.infra.queues.jobs.receive(
            max_messages=1, wait_seconds=5, visibility_timeout=30
        )
        assert len(got) == 1
        assert got[0].receive_count == receive  # the same message: the attempt counted
        token = uuid.uuid4().hex
        outcome, _ = await worker.claim(job.id, got[0], token)
        assert outcome is ClaimOutcome.CLAIMED
        await failures.on_failure(
            worker.ctx, JobRun(job_id=job.id, message=got[0], token=token), failure
        )
        after = await stack.job(job.id)
        assert after.attempts == receive
        assert after.error_code == "local_resource"
        if receive < MAX_RECEIVES:
            assert after.status is S.PENDING
    assert after.status is S.FAILED
    assert after.error_text is not None
    assert after.error_text.startswith(f"gave up after {MAX_RECEIVES} attempts")
    assert "disk_quota" in after.error_text


def blind_the_stderr_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every processor module that reads ffmpeg's stderr for machine failures
    (whichever module runs ffmpeg) find none."""
    patched = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("videoforge.processor.") or module is resources:
            continue
        if getattr(module, "machine_failure", None) is resources.machine_failure:
            monkeypatch.setattr(module, "machine_failure", lambda _stderr: None)
            patched.append(name)
    assert patched, "no module reads ffmpeg's stderr for machine failures"


@pytest.mark.slow
async def test_a_media_verdict_on_a_full_disk_is_not_believed(
    stack: Stack,
    capped_dir: Callable[..., CappedDir],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ffmpeg fails for lack of room, but in words the stderr watch does not know (a
    # newer ffmpeg, another muxer): whatever the pipeline then concludes about the media
    # (here: corrupt_media from an empty or missing MP4), the disk is full, so the job
    # is handed back, not failed.
    source = make_clip(tmp_path / "source.mp4", seconds=6, size="640x360")
    # The source fits, the ladder's ~1 MB of outputs does not.
    capped = capped_dir(source.stat().st_size + 400 * 1024)
    if capped.how != "tmpfs":
        pytest.skip("needs a real size-capped filesystem to fill")
    blind_the_stderr_watch(monkeypatch)
    key = await stack.upload(source)
    job = await stack.new_job(key)
    async with worker_on(stack, capped):
        given_back = await released(stack, job.id)
        assert disk_ok() == 0.0
    assert given_back.attempts == 0  # the machine's attempt: not counted
    assert given_back.error_text is not None
    assert "no_space" in given_back.error_text
    statuses = [e.status for e in await stack.events(job.id)]
    assert S.PROCESSING in statuses
    assert S.FAILED not in statuses
