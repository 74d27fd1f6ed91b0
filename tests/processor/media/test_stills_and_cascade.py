"""The stills run beside the ladder (and stopped with it), and a cascaded ladder through
the real pipeline."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.dash import decode_time, timescale
from videoforge.processor.pipeline import MediaRejected, process_file
from videoforge.processor.playlists import playlist_stats

OVERLAP = ProcessingConfig(threads=1, preset="ultrafast", overlap_stills=True)

needs_two_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="the stills overlap only with a core to spare"
)


@dataclass
class Launch:
    argv: list[str]
    proc: Any
    started: float
    ended: float | None = None


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every process spawned, with when it started and when it exited."""
    seen: list[Launch] = []
    watchers: list[asyncio.Task[None]] = []
    real = asyncio.create_subprocess_exec

    async def watch(launch: Launch) -> None:
        await launch.proc.wait()
        launch.ended = time.monotonic()

    async def recording(*argv: Any, **kwargs: Any) -> Any:
        proc = await real(*argv, **kwargs)
        launch = Launch([str(a) for a in argv], proc, time.monotonic())
        seen.append(launch)
        watchers.append(asyncio.create_task(watch(launch)))
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return seen


def one(launched: list[Launch], which: Callable[[list[str]], bool]) -> Launch:
    (found,) = [launch for launch in launched if which(launch.argv)]
    return found


def is_ladder(argv: list[str]) -> bool:
    return "-progress" in argv


def is_stills(argv: list[str]) -> bool:
    return "thumbnail.jpg" in argv


@needs_two_cores
async def test_the_stills_run_while_the_ladder_encodes(
    clips: Any, tmp_path: Path, launched: list[Launch]
) -> None:
    result = await process_file(clips.long, tmp_path / "job", OVERLAP)
    ladder, stills = one(launched, is_ladder), one(launched, is_stills)
    assert ladder.ended is not None
    assert stills.started < ladder.ended  # started before the ladder's ffmpeg had finished
    for still in (result.thumbnail, result.preview):
        assert (result.output_dir / still).stat().st_size > 0
    assert [r.quality for r in result.renditions] == ["480p", "mobile"]


async def test_without_the_setting_the_stills_wait_for_the_ladder(
    clips: Any, tmp_path: Path, launched: list[Launch]
) -> None:
    await process_file(clips.long, tmp_path / "job", OVERLAP.with_overrides(overlap_stills=False))
    ladder, stills = one(launched, is_ladder), one(launched, is_stills)
    assert ladder.ended is not None
    assert stills.started >= ladder.ended


def assert_all_gone(launched: list[Launch]) -> None:
    for launch in launched:
        assert launch.proc.returncode is not None
        assert not os.path.exists(f"/proc/{launch.proc.pid}"), "ffmpeg outlived the pipeline"


@needs_two_cores
async def test_a_ladder_that_fails_stops_the_stills_with_it(
    clips: Any, tmp_path: Path, launched: list[Launch]
) -> None:
    # veryslow: the ladder is still encoding when the 1 s budget runs out.
    slow = OVERLAP.with_overrides(preset="veryslow", transcode_timeout=1.0, preview_seconds=6.0)
    with pytest.raises(MediaRejected) as caught:
        await process_file(clips.long, tmp_path / "job", slow)
    assert caught.value.code == "timeout"
    one(launched, is_stills)
    assert_all_gone(launched)


@needs_two_cores
async def test_cancelling_the_job_stops_both_runs(
    clips: Any, tmp_path: Path, launched: list[Launch]
) -> None:
    slow = OVERLAP.with_overrides(preset="veryslow", preview_seconds=6.0)
    task = asyncio.create_task(process_file(clips.long, tmp_path / "job", slow))
    for _ in range(300):
        if any(is_stills(launch.argv) for launch in launched):
            break
        await asyncio.sleep(0.05)
    assert one(launched, is_ladder).proc.returncode is None  # both still at work
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_all_gone(launched)


async def test_a_cascaded_ladder_has_every_rung_at_its_size_and_aligned(
    clips: Any, tmp_path: Path
) -> None:
    config = OVERLAP.with_overrides(cascade_scaling=True, hls_segment_seconds=2.0)
    result = await process_file(clips.long, tmp_path / "job", config)
    out = result.output_dir
    assert [(r.quality, r.width, r.height) for r in result.renditions] == [
        ("480p", 854, 480),
        ("mobile", 640, 360),
    ]
    starts = []
    for rendition in result.renditions:
        stats = playlist_stats(out, rendition.playlist_key, "avc1")
        scale = timescale(out / f"hls/{rendition.quality}/init.mp4")
        starts.append([(decode_time(out / key) or 0) / scale for key in stats.segments])
    assert len(starts[0]) == 3
    assert starts[0] == pytest.approx(starts[1], abs=0.04)
