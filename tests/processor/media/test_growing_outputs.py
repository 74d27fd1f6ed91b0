"""Segments handed out while the ladder still runs (watch while it processes, issue 15).

The ladder is slowed down for real: the first handed-out batch stops ffmpeg (SIGSTOP)
while the test looks at the files, so "before the ladder ended" is a fact of the run,
not a matter of timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor import pipeline
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import process_file
from videoforge.processor.progressive import ReadyOutputs, listed_segments

CONFIG = ProcessingConfig(threads=1, gop_seconds=1.0, hls_segment_seconds=1.0)


def _ladder_pids() -> list[int]:
    """Our ffmpeg children running the ladder (the one with the tee muxer) right now."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"tee" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("growing") / "ten.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=s=854x480:r=25:d=10",
         "-f", "lavfi", "-i", "sine=frequency=440:d=10",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


async def test_segments_are_handed_out_while_the_ladder_runs(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "_SEGMENT_POLL_SECONDS", 0.05)
    batches: list[ReadyOutputs] = []
    copies: dict[str, bytes] = {}  # what was handed out, as it was when handed out
    texts: list[dict[str, str]] = []  # each batch's playlists, as handed out
    held: list[dict[str, Any]] = []

    async def on_segments(ready: ReadyOutputs) -> None:
        batches.append(ready)
        for file in ready.files:
            copies[file.rel_key] = file.path.read_bytes()
        texts.append(
            {f.rel_key: f.path.read_text() for f in ready.files if f.rel_key.endswith(".m3u8")}
        )
        if held:
            return
        pids = _ladder_pids()
        assert pids, "the ladder's ffmpeg must still be running"
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            out = tmp_path / "job" / "out"
            held.append(
                {
                    # ffmpeg's own playlist of a rung this batch came from
                    "final_playlist": (out / ready.files[-1].rel_key).read_text(),
                    "mp4_finished": (out / "mp4/mobile.mp4").is_file()
                    and b"moov" in (out / "mp4/mobile.mp4").read_bytes()[:4096],
                }
            )
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    result = await process_file(clip, tmp_path / "job", CONFIG, on_segments=on_segments)
    out = result.output_dir

    # The first batch came while ffmpeg was still writing: its playlist had no end yet
    # and the +faststart MP4 (written last) was not there.
    assert held
    assert "#EXT-X-ENDLIST" not in held[0]["final_playlist"]
    assert held[0]["mp4_finished"] is False
    assert len(batches) >= 2

    # Every handed-out segment is byte for byte the final one; the final outputs list them.
    final = {o.rel_key: o for o in result.outputs}
    handed_segments = [k for k in copies if not k.endswith(".m3u8")]
    assert handed_segments
    for key in handed_segments:
        assert copies[key] == (out / key).read_bytes(), key
        assert key in final

    # In each batch, a playlist comes after the segments it lists, and lists only what
    # was handed out by then; it is an EVENT playlist without an end.
    handed: set[str] = set()
    for ready, playlists in zip(batches, texts, strict=True):
        for file in ready.files:
            if file.rel_key.endswith(".m3u8"):
                text = playlists[file.rel_key]
                assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text
                assert "#EXT-X-ENDLIST" not in text
                folder = file.rel_key.rsplit("/", 1)[0]
                listed = [f"{folder}/{name}" for name, _ in listed_segments(text)]
                assert listed
                assert set(listed) <= handed
                assert f"{folder}/init.mp4" in handed
            else:
                handed.add(file.rel_key)

    # Once the lowest rung and the audio have a segment, the batch says what plays.
    streams = [b.stream for b in batches if b.stream is not None]
    assert streams
    first = streams[0]
    assert [r.quality for r in first.renditions] == ["mobile"]
    assert first.renditions[0].codecs.startswith("avc1.")
    assert first.renditions[0].segments >= 1
    assert [a.playlist_key for a in first.audio] == ["hls/audio-0/index.m3u8"]
    assert streams[-1].renditions[0].segments >= first.renditions[0].segments

    # The finished playlists are VOD, complete and ended, as they always were.
    for key in ("hls/480p/index.m3u8", "hls/mobile/index.m3u8", "hls/audio-0/index.m3u8"):
        text = (out / key).read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert "EVENT" not in text
        assert text.rstrip().endswith("#EXT-X-ENDLIST")
        assert sum(d for _, d in listed_segments(text)) == pytest.approx(10.0, abs=0.2)
    # The snapshots were never outputs.
    assert not any(k.startswith("growing/") for k in final)
