"""process_file end to end on tiny clips: outputs decode, playlists hold together, guards hold."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor import pipeline, runner
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import PipelineResult, process_file
from videoforge.processor.progress import Progress

CONFIG = ProcessingConfig(threads=1)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         "-count_frames", str(path)],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(json.loads(out))


def mean_luma(picture: Path) -> float:
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(picture), "-f", "rawvideo",
         "-pix_fmt", "gray", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return sum(raw) / len(raw)


def parse_master(text: str) -> list[tuple[dict[str, str], str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(
                (m.group(1), m.group(2).strip('"'))
                for m in re.finditer(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])
            )
            variants.append((attrs, lines[i + 1]))
    return variants


def variant_files(playlist: Path) -> tuple[str, list[tuple[float, str]]]:
    init = ""
    segments: list[tuple[float, str]] = []
    duration = None
    for line in playlist.read_text().splitlines():
        if line.startswith("#EXT-X-MAP:"):
            uri = re.search(r'URI="([^"]+)"', line)
            assert uri, line
            init = uri.group(1)
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            assert duration is not None
            segments.append((duration, line))
    assert playlist.read_text().rstrip().endswith("#EXT-X-ENDLIST")
    return init, segments


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every tool argv handed to the OS while the test runs (below the builder, not
    through it), each checked to go through the parent-death launcher first."""
    seen: list[list[str]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*argv: Any, **kwargs: Any) -> Any:
        launched = [str(a) for a in argv]
        assert Path(launched[0]).name == "setpriv", launched
        assert launched[1:4] == ["--pdeathsig", "KILL", "--"], launched
        seen.append(launched[4:])
        return await real(*argv, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return seen


async def test_landscape_ladder_hls_mp4_stills_and_metadata(
    clips: Any,
    tmp_path: Path,
    spawned: list[list[str]],
    assert_guarded: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    progress: list[int] = []

    async def on_progress(value: int) -> None:
        progress.append(value)

    # Every step's report, not one a second: how fast the machine runs this clip must not
    # decide what the test sees (the throttle has its own tests).
    monkeypatch.setattr(pipeline, "Progress", functools.partial(Progress, interval=0.0))

    result = await process_file(clips.landscape, tmp_path / "job", CONFIG, on_progress=on_progress)
    out = result.output_dir

    # Planned sizes, really encoded: each MP4 decodes at its size with audio.
    assert [(r.quality, r.width, r.height) for r in result.renditions] == [
        ("480p", 854, 480),
        ("mobile", 640, 360),
    ]
    for rendition in result.renditions:
        info = ffprobe(out / rendition.mp4_key)
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
        assert (video["width"], video["height"]) == (rendition.width, rendition.height)
        assert video["codec_name"] == "h264"
        assert video["pix_fmt"] == "yuv420p"
        assert int(video["nb_read_frames"]) >= 30
        assert audio["codec_name"] == "aac"
        assert audio["profile"] == "LC"
        assert float(info["format"]["duration"]) == pytest.approx(1.5, abs=0.15)
        data = (out / rendition.mp4_key).read_bytes()
        assert data.index(b"moov") < data.index(b"mdat"), "MP4 must be +faststart"

    # The master playlist references every variant, relatively, with real attributes.
    master = (out / result.master_playlist).read_text()
    variants = parse_master(master)
    assert sorted(uri for _, uri in variants) == ["480p/index.m3u8", "mobile/index.m3u8"]
    durations_by_variant = []
    for attrs, uri in variants:
        rendition = next(r for r in result.renditions if uri == f"{r.quality}/index.m3u8")
        assert attrs["RESOLUTION"] == f"{rendition.width}x{rendition.height}"
        assert int(attrs["BANDWIDTH"]) >= int(attrs["AVERAGE-BANDWIDTH"]) > 10_000
        assert int(attrs["BANDWIDTH"]) <= rendition_cap(rendition.quality) * 1.5
        assert float(attrs["FRAME-RATE"]) == pytest.approx(rendition.fps)
        video_codec, audio_codec = attrs["CODECS"].split(",")
        assert re.fullmatch(r"avc1\.[0-9a-f]{6}", video_codec)
        assert audio_codec == "mp4a.40.2"
        profile_idc = int(video_codec[5:7], 16)
        assert profile_idc == (77 if rendition.quality == "mobile" else 100)  # Main / High
        playlist = out / "hls" / uri
        init, segments = variant_files(playlist)
        assert init == "init.mp4"
        assert (playlist.parent / init).stat().st_size > 0
        for _, segment in segments:
            assert "/" not in segment
            assert ":" not in segment
            assert (playlist.parent / segment).stat().st_size > 0
        durations_by_variant.append([d for d, _ in segments])
    # Keyframes on one grid: every variant cuts its segments at the same times.
    assert all(d == durations_by_variant[0] for d in durations_by_variant)
    assert "://" not in master
    assert not re.search(r"^/", master, re.M)

    # Representative thumbnail and a small animated preview.
    thumb = ffprobe(out / result.thumbnail)["streams"][0]
    assert thumb["codec_name"] == "mjpeg"
    assert (thumb["width"], thumb["height"]) == (640, 360)
    gif = ffprobe(out / result.preview)["streams"][0]
    assert gif["codec_name"] == "gif"
    assert gif["width"] == 320
    assert int(gif["nb_read_frames"]) > 5

    # The metadata document describes the probe and the renditions.
    metadata = json.loads((out / result.metadata).read_text())
    assert metadata["source"]["width"] == 854
    assert metadata["source"]["has_audio"] is True
    assert [r["mp4_key"] for r in metadata["renditions"]] == ["mp4/480p.mp4", "mp4/mobile.mp4"]

    # Every output is listed once, with its real size and a content type.
    by_key = {o.rel_key: o for o in result.outputs}
    assert len(by_key) == len(result.outputs)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(by_key) == on_disk
    assert {"hls/master.m3u8", "hls/480p/init.mp4", "thumbnail.jpg", "preview.gif"} <= on_disk
    for output in result.outputs:
        assert output.size == output.path.stat().st_size > 0
    assert by_key["mp4/480p.mp4"].kind == "video"
    assert by_key["mp4/480p.mp4"].quality == "480p"
    assert by_key["hls/mobile/index.m3u8"].content_type == "application/vnd.apple.mpegurl"
    assert by_key["preview.gif"].kind == "gif"
    assert by_key["metadata.json"].kind == "metadata"
    message = result.renditions[0].to_message("outputs/j1/")
    assert message.playlist_key == "outputs/j1/hls/480p/index.m3u8"

    # Progress: increasing, ending at 100.
    assert progress[0] == 0
    assert progress[-1] == 100
    # Never goes down and never repeats; each step reports when it is done.
    assert progress == sorted(set(progress))
    assert {2, 5, 94, 98} <= set(progress)  # probed, measured, ladder done, stills done

    # Exactly four processes (probe, loudness measurement, ladder, stills) and the ladder
    # decoded the source once and encoded the audio once.
    assert [Path(argv[0]).name for argv in spawned] == ["ffprobe", "ffmpeg", "ffmpeg", "ffmpeg"]
    for argv in spawned:
        assert_guarded(argv)
    measure, ladder = spawned[1], spawned[2]
    assert "ebur128=" in measure[measure.index("-filter_complex") + 1]
    assert measure[-2:] == ["null", "-"]  # a measurement writes nothing
    assert ladder.count("-i") == 1
    assert "split=2" in ladder[ladder.index("-filter_complex") + 1]
    assert ladder.count("libx264") == 2
    assert ladder.count("aac") == 1


def rendition_cap(quality: str) -> int:
    return {r.name: r.max_bitrate for r in CONFIG.rungs}[quality] + CONFIG.audio_bitrate


async def _result(source: Path, workdir: Path) -> PipelineResult:
    return await process_file(source, workdir, CONFIG)


async def test_audio_less_source_skips_audio_cleanly(clips: Any, tmp_path: Path) -> None:
    result = await _result(clips.silent, tmp_path)
    info = ffprobe(result.output_dir / "mp4/source.mp4")
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    attrs, _ = parse_master((result.output_dir / "hls/master.m3u8").read_text())[0]
    assert "mp4a" not in attrs["CODECS"]


@pytest.mark.parametrize(
    ("clip", "size"),
    [("rotated", (240, 320)), ("odd", (320, 240)), ("tiny", (160, 120)), ("portrait", (360, 640))],
)
async def test_outputs_have_the_display_size(
    clips: Any, tmp_path: Path, clip: str, size: tuple[int, int]
) -> None:
    result = await _result(getattr(clips, clip), tmp_path)
    assert [(r.width, r.height) for r in result.renditions] == [size]
    video = ffprobe(result.output_dir / result.renditions[0].mp4_key)["streams"][0]
    assert (video["width"], video["height"]) == size
    # Rotation is applied to the pixels, so no player rotates the output a second time.
    assert not any("rotation" in side for side in video.get("side_data_list", []))


async def test_thumbnail_is_not_the_black_opening(clips: Any, tmp_path: Path) -> None:
    first_frame = tmp_path / "first.png"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clips.black_start),
         "-frames:v", "1", str(first_frame)],
        check=True,
    )  # fmt: skip
    assert mean_luma(first_frame) < 20  # the clip really opens on black
    result = await _result(clips.black_start, tmp_path / "job")
    assert mean_luma(result.output_dir / result.thumbnail) > 60


async def test_guards_are_on_every_call_the_pipeline_makes(
    clips: Any, tmp_path: Path, assert_guarded: Any
) -> None:
    seen: list[list[str]] = []
    remove = runner.observe_spawns(seen.append)
    try:
        await _result(clips.small, tmp_path)
    finally:
        remove()
    assert len(seen) == 4  # probe, loudness measurement, ladder, stills
    for argv in seen:
        assert_guarded(argv)
