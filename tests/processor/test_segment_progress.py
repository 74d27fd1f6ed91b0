"""The ladder's progress from its finished HLS segments (ffmpeg 5.1 prints no -progress
report while the storyboard output has written nothing)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from videoforge.processor import pipeline


async def test_finished_segments_of_the_slowest_rung_are_the_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "_SEGMENT_POLL_SECONDS", 0.01)
    rungs: list[Any] = [SimpleNamespace(hls_dir="hls/720p"), SimpleNamespace(hls_dir="hls/mobile")]
    reported: list[float] = []

    async def report(seconds: float) -> None:
        reported.append(seconds)

    def segments(rung: Any, count: int) -> None:
        folder = tmp_path / rung.hls_dir
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(count):
            (folder / f"seg_{n:05d}.m4s").write_bytes(b"x")

    watch = asyncio.create_task(pipeline._watch_segments(tmp_path, rungs, 4.0, report))
    try:
        segments(rungs[0], 5)  # the other rung has not started: nothing is done yet
        await asyncio.sleep(0.1)
        assert reported == []
        segments(rungs[1], 3)  # two finished segments, one being written
        for _ in range(200):
            if reported:
                break
            await asyncio.sleep(0.01)
        assert reported
        assert reported[-1] == 8.0
    finally:
        watch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watch
