"""Remux through the real pipeline: the top rung IS the source's video, packet for packet,
and every rung's segments still start at the same times."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor import runner
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.dash import decode_time, timescale
from videoforge.processor.pipeline import process_file
from videoforge.processor.playlists import playlist_stats

# Short segments, so a 6 s clip has several to compare.
CONFIG = ProcessingConfig(
    threads=1, preset="ultrafast", remux_max_gop_seconds=4.0, hls_segment_seconds=2.0
)
FPS = 25
# Irregular on purpose (an editor's scene cuts): gaps of 1.2, 1.8, 1.6 and 1.4 s.
SOURCE_KEYFRAMES = (0.0, 1.2, 3.0, 4.6)


def _source(path: Path, force_key_frames: str, gop: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s=854x480:r={FPS}:d=6",
         "-f", "lavfi", "-i", "sine=frequency=440:d=6",
         # High profile with B-frames (decode order differs from display order), under
         # the 480p rung's 1.4 Mb/s.
         "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-bf", "2",
         "-b:v", "600k", "-maxrate", "800k", "-bufsize", "1600k", "-pix_fmt", "yuv420p",
         "-g", str(gop), "-sc_threshold", "0", "-force_key_frames", force_key_frames,
         "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def compatible(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("remux")
    return _source(root / "compatible.mp4", ",".join(map(str, SOURCE_KEYFRAMES)), gop=250)


def video_packets(path: Path) -> list[dict[str, str]]:
    """Every video packet: its data's MD5, its time and its flags."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_data_hash", "MD5",
         "-show_entries", "packet=pts_time,flags,data_hash", "-print_format", "json",
         str(path)],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return list(json.loads(out)["packets"])


def segment_starts(out: Path, playlist_key: str, init_key: str) -> list[float]:
    """Each media segment's start (its tfdt decode time) in seconds."""
    stats = playlist_stats(out, playlist_key, "avc1")
    scale = timescale(out / init_key)
    starts = [decode_time(out / key) for key in stats.segments]
    assert None not in starts
    return [t / scale for t in starts if t is not None]


def keyframe_times(path: Path) -> list[float]:
    return sorted(float(p["pts_time"]) for p in video_packets(path) if "K" in p["flags"])


async def test_the_top_rung_is_the_source_video_and_segments_line_up(
    compatible: Path, tmp_path: Path, assert_guarded: Any
) -> None:
    seen: list[list[str]] = []
    remove = runner.observe_spawns(seen.append)
    try:
        result = await process_file(compatible, tmp_path / "job", CONFIG)
    finally:
        remove()
    out = result.output_dir
    metadata = json.loads((out / result.metadata).read_text())
    assert metadata["remux"]["remux"] is True
    assert metadata["remux"]["reason"] == "compatible"
    assert [r.quality for r in result.renditions] == ["480p", "mobile"]
    top, lower = result.renditions

    # Packet for packet, the top rung's video is the source's: the same bytes, in the
    # same order, in the MP4 download and in the HLS segments (init + media, joined).
    source = [p["data_hash"] for p in video_packets(compatible)]
    assert len(source) == 6 * FPS
    assert [p["data_hash"] for p in video_packets(out / top.mp4_key)] == source
    joined = tmp_path / "top-hls.mp4"
    stats = playlist_stats(out, top.playlist_key, "avc1")
    joined.write_bytes(
        b"".join((out / key).read_bytes() for key in ("hls/480p/init.mp4", *stats.segments))
    )
    assert [p["data_hash"] for p in video_packets(joined)] == source
    # ... and the lower rung was really encoded (and has its own size).
    assert [p["data_hash"] for p in video_packets(out / lower.mp4_key)] != source
    assert (lower.width, lower.height) == (640, 360)

    # The encoded rung has its keyframes at the source's times and nowhere else.
    assert keyframe_times(out / lower.mp4_key) == pytest.approx(SOURCE_KEYFRAMES, abs=0.5 / FPS)
    assert keyframe_times(out / top.mp4_key) == pytest.approx(SOURCE_KEYFRAMES, abs=1e-3)

    # Every rung cuts its segments at the same keyframes: the first one past each 2 s.
    starts = {
        r.quality: segment_starts(out, r.playlist_key, f"hls/{r.quality}/init.mp4")
        for r in result.renditions
    }
    assert starts["480p"] == pytest.approx([0.0, 3.0, 4.6], abs=0.5 / FPS)
    assert len(starts["mobile"]) == len(starts["480p"])
    assert starts["mobile"] == pytest.approx(starts["480p"], abs=1.0 / FPS)

    # BANDWIDTH is still measured from the segments the copy produced.
    master = (out / result.master_playlist).read_text()
    audio_peak = result.audio_tracks[0].bandwidth
    line = next(x for x in master.splitlines() if "RESOLUTION=854x480" in x)
    assert f"BANDWIDTH={stats.peak_bandwidth + audio_peak}," in line
    assert top.bandwidth == stats.peak_bandwidth
    assert top.codecs.startswith("avc1.64")  # High, as the source is

    # One more call than an encode (the keyframe scan), every one guarded.
    names = [Path(a[0]).name for a in seen]
    assert names == ["ffprobe", "ffmpeg", "ffprobe", "ffmpeg", "ffmpeg"]
    for argv in seen:
        assert_guarded(argv)
    ladder = seen[3]
    assert ladder[ladder.index("-c:v:0") + 1] == "copy"
    assert ladder.count("libx264") == 1
    assert ladder[ladder.index("-force_key_frames:v:1") + 1] == "0,1.2,3,4.6"


async def test_keyframes_too_far_apart_are_encoded_on_the_grid(tmp_path: Path) -> None:
    # One keyframe every 5 s: past the 4 s limit, so the top rung is encoded.
    source = _source(tmp_path / "long-gop.mp4", "0,5", gop=250)
    result = await process_file(source, tmp_path / "job", CONFIG)
    metadata = json.loads((result.output_dir / result.metadata).read_text())
    assert metadata["remux"]["remux"] is False
    assert metadata["remux"]["reason"] == "keyframes"
    top = result.renditions[0]
    source_hashes = [p["data_hash"] for p in video_packets(source)]
    assert [p["data_hash"] for p in video_packets(result.output_dir / top.mp4_key)] != (
        source_hashes
    )
    # The encoded ladder's own 2 s grid.
    assert keyframe_times(result.output_dir / top.mp4_key) == pytest.approx(
        [0.0, 2.0, 4.0], abs=0.5 / FPS
    )


async def test_a_keyframe_scan_that_fails_never_fails_the_job(
    compatible: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from videoforge.processor import passes

    # An option ffprobe does not know: the scan exits non-zero (as a broken file would).
    monkeypatch.setattr(passes, "keyframe_scan_args", lambda: ["-no_such_option", "1"])
    result = await process_file(compatible, tmp_path / "job", CONFIG)
    metadata = json.loads((result.output_dir / result.metadata).read_text())
    assert metadata["remux"]["remux"] is False
    assert metadata["remux"]["reason"] == "scan_failed"
    top = result.output_dir / result.renditions[0].mp4_key
    assert [p["data_hash"] for p in video_packets(top)] != [
        p["data_hash"] for p in video_packets(compatible)
    ]


async def test_an_mpeg_ts_source_is_encoded(compatible: Path, tmp_path: Path) -> None:
    # The same video in MPEG-TS: its audio starts first, so it is encoded, not copied.
    ts = tmp_path / "compatible.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i",
         str(compatible), "-c", "copy", "-f", "mpegts", str(ts)],
        check=True, timeout=60,
    )  # fmt: skip
    result = await process_file(ts, tmp_path / "job", CONFIG)
    metadata = json.loads((result.output_dir / result.metadata).read_text())
    assert (metadata["remux"]["remux"], metadata["remux"]["reason"]) == (False, "container")
