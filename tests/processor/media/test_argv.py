"""The one argv builder: guards always on, dangerous options refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, Tool, build_argv


def test_ffprobe_and_ffmpeg_argv_carry_the_guards(
    tmp_path: Path, assert_guarded: Callable[[list[str]], None]
) -> None:
    config = ProcessingConfig(max_pixels=1234, max_streams=7)
    probe = build_argv(config, Tool.FFPROBE, inputs=[MediaInput(tmp_path / "a.mp4")])
    run = build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(tmp_path / "a.mp4", ("-ss", "1", "-t", "2"))],
        args=["-c:v", "libx264", "out.mp4"],
        progress=True,
    )
    for argv in (probe, run):
        assert_guarded(argv)
        assert argv[argv.index("-max_pixels") + 1] == "1234"
    assert run[run.index("-progress") + 1] == "pipe:1"
    assert run[-3:] == ["-c:v", "libx264", "out.mp4"]


def test_an_input_name_can_never_pick_a_protocol(tmp_path: Path) -> None:
    argv = build_argv(
        ProcessingConfig(), Tool.FFPROBE, inputs=[MediaInput(Path("concat:/etc/passwd|x"))]
    )
    target = argv[argv.index("-i") + 1]
    assert target.startswith("file:/")
    assert target.endswith("concat:/etc/passwd|x")


@pytest.mark.parametrize(
    "args",
    [
        ["-safe", "0"],
        ["-allowed_extensions", "ALL"],
        ["-enable_drefs", "1"],
        ["-protocol_whitelist", "file,http,tcp"],
        ["-format_whitelist", "hls"],
        ["-i", "http://127.0.0.1/x"],
        ["-filter_complex", "movie=/etc/passwd[v]"],
        ["-filter_complex", "amovie=x.wav"],
        ["-sub_charenc", "/etc/passwd"],
        ["-dump_attachment:t", "font.ttf"],
        ["-attach", "/etc/passwd"],
        ["-filter_complex", "[0:v]subtitles=/etc/passwd[v]"],
        ["-vf", "ass=/tmp/x.ass"],
    ],
)
def test_dangerous_output_options_are_refused(args: list[str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refusing"):
        build_argv(ProcessingConfig(), Tool.FFMPEG, inputs=[MediaInput(tmp_path / "a")], args=args)


@pytest.mark.parametrize("option", [("-f", "concat"), ("-safe", "0"), ("-protocol_whitelist", "")])
def test_only_seek_options_may_precede_an_input(option: tuple[str, str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        build_argv(ProcessingConfig(), Tool.FFMPEG, inputs=[MediaInput(tmp_path / "a", option)])
