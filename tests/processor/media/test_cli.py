"""``videoforge transcode INPUT OUTDIR`` through the real command and through the function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor.transcode_cli import transcode_file
from videoforge.settings import load_settings


def test_transcode_prints_outputs_and_writes_them(
    clips: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(VIDEOFORGE_DATA_DIR=str(tmp_path / "data"), FFMPEG_THREADS=1)
    outdir = tmp_path / "out"
    assert transcode_file(settings, clips.landscape, outdir) == 0
    printed = capsys.readouterr().out
    listed = {line.split("\t")[0] for line in printed.splitlines() if "\t" in line}
    on_disk = {p.relative_to(outdir).as_posix() for p in outdir.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert {"hls/master.m3u8", "mp4/480p.mp4", "mp4/mobile.mp4", "thumbnail.jpg"} <= on_disk
    assert "480p 854x480" in printed
    # The temporary work area is gone; only outputs remain.
    assert sorted(p.name for p in outdir.iterdir()) == [
        "hls",
        "metadata.json",
        "mp4",
        "preview.gif",
        "storyboard",
        "thumbnail.jpg",
        "thumbnails",  # the three candidates a creator picks from
    ]


def test_refused_input_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    playlist = tmp_path / "evil.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    env = {**os.environ, "VIDEOFORGE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(  # the installed `videoforge` command, as an operator runs it
        [
            str(Path(sys.executable).parent / "videoforge"),
            "transcode",
            str(playlist),
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "unsupported_format" in done.stderr
    assert "root:" not in done.stdout + done.stderr
    missing = transcode_file(load_settings(), tmp_path / "nope.mp4", tmp_path / "o")
    assert missing == 2
