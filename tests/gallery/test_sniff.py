"""Container sniffing on real files made by ffmpeg, and on things that are not videos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from videoforge.gallery.sniff import SNIFF_BYTES, sniff_container

# (extension, extra ffmpeg args, expected family)
CONTAINERS = [
    ("mp4", ["-c:v", "libx264"], "mp4"),
    ("mov", ["-c:v", "libx264"], "mp4"),
    ("mkv", ["-c:v", "libx264"], "matroska"),
    ("webm", ["-c:v", "libvpx", "-b:v", "100k"], "matroska"),
    ("avi", ["-c:v", "mpeg4"], "avi"),
    ("flv", ["-c:v", "flv"], "flv"),
    ("ts", ["-c:v", "mpeg2video"], "mpeg-ts"),
    ("mpg", ["-c:v", "mpeg2video", "-f", "vob"], "mpeg-ps"),
    ("ogv", ["-c:v", "libtheora"], "ogg"),
    ("wmv", ["-c:v", "wmv2"], "asf"),
]


@pytest.mark.parametrize(("ext", "args", "family"), CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_real_containers_are_recognised(
    tmp_path: Path, ext: str, args: list[str], family: str
) -> None:
    out = tmp_path / f"clip.{ext}"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=32x32:rate=5:duration=0.4",
            "-pix_fmt",
            "yuv420p",
            *args,
            str(out),
        ],
        check=True,
        timeout=60,
    )
    assert sniff_container(out.read_bytes()[:SNIFF_BYTES]) == family


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b"<svg onload=alert(1)>",
        b"just some text, not a video at all" * 20,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"GIF89a\x01\x00\x01\x00",
        b"%PDF-1.7",
        b"",
        b"\x47" + b"\x00" * 100,  # one TS sync byte is not a transport stream
    ],
)
def test_non_videos_are_refused(data: bytes) -> None:
    assert sniff_container(data) is None
