"""The subtitle run opens the text subtitle decoders and no other: with the input's
``-codec_whitelist``, ffmpeg refuses to decode the picture or the audio of the same
file (and so any picture subtitle codec too), while the text tracks convert."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from videoforge.processor import ffmpeg
from videoforge.processor.ffmpeg import MediaInput, Tool
from videoforge.processor.subtitles import SUBTITLE_DECODERS

from .test_media_outputs import CONFIG, make_source


async def _run(source: Path, out: Path, *args: str) -> ffmpeg.RunResult:
    argv = ffmpeg.build_argv(
        CONFIG.with_overrides(stderr_tail_bytes=4096),
        Tool.FFMPEG,
        inputs=[MediaInput(source, decoders=SUBTITLE_DECODERS)],
        args=list(args),
    )
    return await ffmpeg.run_tool(argv, cwd=out, time_limit=60, config=CONFIG)


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
