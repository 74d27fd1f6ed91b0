"""Probe results on real clips, and every rejection the probe is responsible for."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoforge.processor.config import DEFAULT_RUNGS, ProcessingConfig
from videoforge.processor.ffmpeg import MediaRejected
from videoforge.processor.ladder import plan_ladder
from videoforge.processor.probe import probe_file

from .conftest import Clips

CONFIG = ProcessingConfig()


async def test_landscape_clip(clips: Clips) -> None:
    probe = await probe_file(clips.landscape, CONFIG)
    assert (probe.width, probe.height, probe.rotation) == (854, 480, 0)
    assert probe.fps == 25
    assert probe.duration == pytest.approx(1.5, abs=0.1)
    assert probe.video_codec == "h264"
    assert probe.audio_codec == "aac"
    assert probe.has_audio
    assert probe.stream_count == 2
    assert probe.size == clips.landscape.stat().st_size
    assert "mp4" in probe.format_name


async def test_rotated_clip_reports_its_display_size(clips: Clips) -> None:
    probe = await probe_file(clips.rotated, CONFIG)
    assert (probe.coded_width, probe.coded_height) == (320, 240)
    assert probe.rotation in (90, 270)
    assert (probe.width, probe.height) == (240, 320)
    planned = plan_ladder(probe.width, probe.height, probe.fps, DEFAULT_RUNGS)
    assert [(r.width, r.height) for r in planned] == [(240, 320)]


async def test_audio_less_portrait_and_odd_clips(clips: Clips) -> None:
    silent = await probe_file(clips.silent, CONFIG)
    assert not silent.has_audio
    assert silent.audio_codec is None
    assert silent.stream_count == 1
    portrait = await probe_file(clips.portrait, CONFIG)
    assert (portrait.width, portrait.height) == (360, 640)
    planned = plan_ladder(portrait.width, portrait.height, portrait.fps, DEFAULT_RUNGS)
    assert [(r.quality, r.width, r.height) for r in planned] == [("mobile", 360, 640)]
    odd = await probe_file(clips.odd, CONFIG)
    assert (odd.width, odd.height, odd.format_name) == (321, 241, "matroska,webm")


async def test_anamorphic_pixels_stretch_the_display_width(clips: Clips, tmp_path: Path) -> None:
    import subprocess

    target = tmp_path / "anamorphic.mkv"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clips.small),
         "-c", "copy", "-aspect", "16:9", str(target)],
        check=True,
    )  # fmt: skip
    probe = await probe_file(target, CONFIG)
    assert (probe.width, probe.height) == (427, 240)


@pytest.mark.parametrize(
    ("clip", "config", "code"),
    [
        ("audio_only", CONFIG, "no_video_stream"),
        ("many_streams", CONFIG, "too_many_streams"),
        ("many_streams", ProcessingConfig(max_streams=30), None),
        ("huge_png", CONFIG, "resolution_too_large"),
        ("small", ProcessingConfig(max_pixels=320 * 240 - 1), "resolution_too_large"),
        ("small", ProcessingConfig(max_duration=1.0), "duration_too_long"),
        ("ten_hours", CONFIG, "duration_too_long"),
        ("small", ProcessingConfig(max_input_bytes=1000), "file_too_large"),
        ("fast", CONFIG, "frame_rate_too_high"),
    ],
)
async def test_bombs_are_rejected_before_transcoding(
    clips: Clips, clip: str, config: ProcessingConfig, code: str | None
) -> None:
    path = getattr(clips, clip)
    if code is None:  # the same file within the limits is accepted: the limit is what bites
        assert (await probe_file(path, config)).stream_count == 21
        return
    with pytest.raises(MediaRejected) as caught:
        await probe_file(path, config)
    assert caught.value.code == code
    assert caught.value.message
    assert "/" not in caught.value.message


async def test_empty_random_and_truncated_files(clips: Clips, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    noise = tmp_path / "noise"
    noise.write_bytes(bytes((i * 7919 + 13) % 251 for i in range(200_000)))
    source = clips.small.read_bytes()
    truncated = tmp_path / "truncated.mp4"  # moov is at the end: it is cut off
    truncated.write_bytes(source[: len(source) // 2])
    expected = {empty: "empty_file", noise: "unsupported_format", truncated: "corrupt_media"}
    for path, code in expected.items():
        with pytest.raises(MediaRejected) as caught:
            await probe_file(path, CONFIG)
        assert caught.value.code == code, path
