"""The subtitle run opens the text subtitle decoders and no other: with the input's
``-codec_whitelist``, ffmpeg refuses to decode the picture or the audio of the same
file (and so any picture subtitle codec too), while the text tracks convert. A real
picture track (PGS, written here segment by segment: ffmpeg has no PGS encoder) is
skipped with a note in the job's metadata, and the text track beside it is kept."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import pytest

from videoforge.processor import ffmpeg, runner
from videoforge.processor.ffmpeg import MediaInput, Tool
from videoforge.processor.pipeline import process_file
from videoforge.processor.subtitles import SUBTITLE_DECODERS

from .test_media_outputs import CONFIG, SRT, make_source, run


async def _run(source: Path, out: Path, *args: str) -> runner.RunResult:
    argv = ffmpeg.build_argv(
        CONFIG.with_overrides(stderr_tail_bytes=4096),
        Tool.FFMPEG,
        inputs=[MediaInput(source, decoders=SUBTITLE_DECODERS)],
        args=list(args),
    )
    return await runner.run_tool(argv, cwd=out, time_limit=60, config=CONFIG)


async def test_only_text_subtitle_decoders_can_be_opened(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    text = await _run(source, tmp_path, "-map", "0:s:1", "-c:s", "webvtt", "-f", "webvtt", "s.vtt")
    assert text.returncode == 0, text.stderr_tail
    assert "Bonjour" in (tmp_path / "s.vtt").read_text()
    picture, sound = await asyncio.gather(
        _run(source, tmp_path, "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-"),
        _run(source, tmp_path, "-map", "0:a:0", "-f", "null", "-"),
    )
    for refused, codec in ((picture, "h264"), (sound, "aac")):
        assert refused.returncode != 0
        assert f"Codec ({codec}) not on whitelist" in refused.stderr_tail


def test_decoder_names_cannot_smuggle_options() -> None:
    with pytest.raises(ValueError, match="decoder"):
        ffmpeg.build_argv(
            CONFIG,
            Tool.FFMPEG,
            inputs=[MediaInput(Path("x.mkv"), decoders=("srt,h264 -i http://x",))],
            args=["-f", "null", "-"],
        )


def _pgs(path: Path, width: int, height: int, seconds: int) -> Path:
    """A HDMV PGS stream (.sup): one display set a second, each a presentation
    composition, a window and an end segment (empty pictures, valid to ffmpeg)."""

    def segment(pts: int, kind: int, data: bytes) -> bytes:
        return b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data

    data = b""
    for n in range(seconds):
        pts = n * 90_000
        composition = struct.pack(">HHBHBBBB", width, height, 0x10, n, 0x80, 0, 0, 0)
        window = struct.pack(">BBHHHH", 1, 0, 0, 0, width, height)
        data += segment(pts, 0x16, composition) + segment(pts, 0x17, window)
        data += segment(pts, 0x80, b"")
    path.write_bytes(data)
    return path


async def test_a_picture_track_is_skipped_with_a_note_and_the_text_kept(tmp_path: Path) -> None:
    (tmp_path / "a.srt").write_text(SRT)
    source = tmp_path / "source.mkv"
    run(
        "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3",
        "-f", "lavfi", "-i", "sine=d=3",
        "-i", str(_pgs(tmp_path / "pgs.sup", 320, 240, 3)), "-i", str(tmp_path / "a.srt"),
        "-map", "0", "-map", "1", "-map", "2", "-map", "3",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s:0", "copy",
        "-c:s:1", "srt", "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=deu",
        str(source),
    )  # fmt: skip
    result = await process_file(source, tmp_path / "job", CONFIG)
    assert [(s.codec, s.language) for s in result.subtitles] == [("subrip", "de")]
    metadata = json.loads((result.output_dir / result.metadata).read_text())
    [note] = [n for n in metadata["notes"] if n["kind"] == "subtitle"]
    assert (note["track"], note["codec"], note["outcome"]) == (0, "hdmv_pgs_subtitle", "skipped")
    assert "image-based" in note["reason"]
    assert not (result.output_dir / "hls/subtitles/s0.vtt").exists()
