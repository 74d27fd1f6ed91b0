"""Cancellation, task cancellation, the wall-clock timeout and the output cap stop ffmpeg."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor.config import ProcessingConfig, Rung
from videoforge.processor.ffmpeg import ToolError
from videoforge.processor.pipeline import MediaRejected, PipelineCancelled, process_file

# veryslow on one thread keeps the tiny ladder busy for several seconds: long enough to
# interrupt it mid-encode, and progress is reported every 0.1 s.
SLOW = ProcessingConfig(preset="veryslow", threads=1, progress_interval=0.1)


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.subprocess.Process]:
    started: list[asyncio.subprocess.Process] = []
    real = asyncio.create_subprocess_exec

    async def recording(*argv: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await real(*argv, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return started


def assert_all_gone(processes: list[asyncio.subprocess.Process]) -> None:
    assert processes, "nothing was started"
    for proc in processes:
        assert proc.returncode is not None
        assert not os.path.exists(f"/proc/{proc.pid}"), "ffmpeg outlived the pipeline"


async def test_cancel_event_stops_ffmpeg_within_two_seconds(
    clips: Any, tmp_path: Path, processes: list[asyncio.subprocess.Process]
) -> None:
    cancel = asyncio.Event()
    encoding = asyncio.Event()

    async def on_progress(value: int) -> None:
        if value > 2:  # past the probe: the ladder is encoding
            encoding.set()

    task = asyncio.create_task(
        process_file(clips.long, tmp_path, SLOW, on_progress=on_progress, cancel=cancel)
    )
    await asyncio.wait_for(encoding.wait(), 30)
    ladder = processes[-1]
    assert ladder.returncode is None  # ffmpeg is running right now
    cancel.set()
    started = time.monotonic()
    with pytest.raises(PipelineCancelled):
        await task
    assert time.monotonic() - started < 2.0
    assert_all_gone(processes)


async def test_task_cancellation_kills_ffmpeg(
    clips: Any, tmp_path: Path, processes: list[asyncio.subprocess.Process]
) -> None:
    encoding = asyncio.Event()

    async def on_progress(value: int) -> None:
        if value > 2:
            encoding.set()

    task = asyncio.create_task(process_file(clips.long, tmp_path, SLOW, on_progress=on_progress))
    await asyncio.wait_for(encoding.wait(), 30)
    assert processes[-1].returncode is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_all_gone(processes)


async def test_wall_clock_timeout_is_a_permanent_rejection(
    clips: Any, tmp_path: Path, processes: list[asyncio.subprocess.Process]
) -> None:
    started = time.monotonic()
    with pytest.raises(MediaRejected) as caught:
        await process_file(clips.long, tmp_path, SLOW.with_overrides(transcode_timeout=1.0))
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 15  # generous: the machine may be loaded
    assert_all_gone(processes)
    assert processes[-1].returncode != 0  # stopped mid-encode, not run to the end


async def test_output_cap_stops_the_encode(
    clips: Any, tmp_path: Path, processes: list[asyncio.subprocess.Process]
) -> None:
    # Near-lossless (CRF 1) output grows by megabytes per second, so the cap bites while
    # the slow encode is far from done; the muxer writes in 256 KiB blocks, hence 300 kB.
    bloated = SLOW.with_overrides(
        rungs=(Rung("480p", 854, 480, 100_000_000, 1),), max_output_bytes=300_000
    )
    with pytest.raises(MediaRejected) as caught:
        await process_file(clips.long, tmp_path, bloated)
    assert caught.value.code == "output_too_large"
    assert_all_gone(processes)
    assert processes[-1].returncode != 0  # stopped mid-encode, not run to the end


async def test_an_encoder_misconfiguration_is_not_blamed_on_the_media(
    clips: Any, tmp_path: Path
) -> None:
    # x264 refuses CRF 0 (lossless) with the High profile: our fault, so not MediaRejected
    # (which would fail the job for good and tell the user their file is broken).
    broken = ProcessingConfig(rungs=(Rung("480p", 854, 480, 1_000_000, 0),))
    with pytest.raises(ToolError) as caught:
        await process_file(clips.landscape, tmp_path, broken)
    assert "lossless" in caught.value.stderr_tail


async def test_output_cap_also_applies_to_what_a_fast_run_left(clips: Any, tmp_path: Path) -> None:
    # A tiny clip finishes between two size checks: the final tally still refuses it.
    config = ProcessingConfig(threads=1)
    total = (await process_file(clips.tiny, tmp_path / "a", config)).total_size
    assert (await process_file(clips.tiny, tmp_path / "b", config.with_overrides(
        max_output_bytes=total))).total_size == total  # fmt: skip
    with pytest.raises(MediaRejected) as caught:
        await process_file(
            clips.tiny, tmp_path / "c", config.with_overrides(max_output_bytes=total - 1)
        )
    assert caught.value.code == "output_too_large"
