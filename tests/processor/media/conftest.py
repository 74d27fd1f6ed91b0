"""Tiny clips made once per session with ffmpeg's lavfi sources, and a loopback hit counter."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=60,
    )


def _clip(
    path: Path,
    size: str,
    *,
    seconds: float = 1.5,
    rate: int = 25,
    audio: bool = True,
    video_filter: str = "",
    extra: tuple[str, ...] = (),
) -> Path:
    source = f"testsrc2=s={size}:r={rate}:d={seconds}"
    if video_filter:
        source += f",{video_filter}"
    args = ["-f", "lavfi", "-i", source]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:d={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-shortest"] if audio else ["-an"]
    _ffmpeg(*args, *extra, str(path))
    return path


@dataclass
class Clips:
    root: Path
    landscape: Path  # 854x480 with audio: 480p + mobile
    long: Path  # 854x480, 6 s: keeps a slow encode busy long enough to interrupt it
    small: Path  # 320x240 with audio: one "source" rendition
    silent: Path  # 320x240, no audio
    portrait: Path  # 360x640
    rotated: Path  # 320x240 coded, rotate=90 in the display matrix -> 240x320
    odd: Path  # 321x241 (4:4:4 in matroska: 4:2:0 cannot have odd sizes)
    tiny: Path  # 160x120
    black_start: Path  # first 0.6 s black
    fast: Path  # 1000 fps
    audio_only: Path
    many_streams: Path
    huge_png: Path  # one 4096x4096 picture: over the default pixel limit
    ten_hours: Path  # 8 KB: two frames, the second stamped at 10 h
    extras: dict[str, Path] = field(default_factory=dict)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    root = tmp_path_factory.mktemp("clips")
    rotated_plain = _clip(root / "rot-src.mp4", "320x240", seconds=1)
    rotated = root / "rotated.mp4"
    _ffmpeg("-i", str(rotated_plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    odd = root / "odd.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=321x241:r=25:d=1", "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(odd),
    )  # fmt: skip
    audio_only = root / "audio.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(audio_only))
    many = root / "many.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=160x120:d=0.5", "-f", "lavfi", "-i", "sine=d=0.5",
        "-map", "0:v", *[x for _ in range(20) for x in ("-map", "1:a")],
        "-c:v", "mpeg4", "-c:a", "pcm_s16le", str(many),
    )  # fmt: skip
    huge = root / "huge.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=blue:s=4096x4096:d=0.04", "-frames:v", "1",
        "-c:v", "png", str(huge),
    )  # fmt: skip
    ten_hours = root / "ten_hours.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=0.08",
        "-vf", "setpts='if(eq(N,1),36000/TB,PTS)'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-preset", "ultrafast", str(ten_hours),
    )  # fmt: skip
    return Clips(
        root=root,
        ten_hours=ten_hours,
        landscape=_clip(root / "landscape.mp4", "854x480"),
        long=_clip(root / "long.mp4", "854x480", seconds=6, audio=False),
        small=_clip(root / "small.mp4", "320x240"),
        silent=_clip(root / "silent.mp4", "320x240", audio=False),
        portrait=_clip(root / "portrait.mp4", "360x640", seconds=1),
        rotated=rotated,
        odd=odd,
        tiny=_clip(root / "tiny.mp4", "160x120", seconds=1),
        black_start=_clip(
            root / "black_start.mp4",
            "320x240",
            seconds=2,
            video_filter="drawbox=c=black:t=fill:enable='lt(t,0.6)'",
        ),
        fast=_clip(root / "fast.mp4", "160x120", seconds=0.1, rate=1000, audio=False),
        audio_only=audio_only,
        many_streams=many,
        huge_png=huge,
    )


FORBIDDEN_DEMUXERS = {"hls", "concat", "image2", "image2pipe", "lavfi", "dash", "srt", "webvtt"}


def _assert_guarded(argv: list[str]) -> None:
    """Every ``-i`` is preceded by the guards; nothing weakens them anywhere."""
    tool = Path(argv[0]).name
    assert "-hide_banner" in argv
    if tool == "ffmpeg":
        assert "-nostdin" in argv
        assert "-y" in argv
    for bad in ("-safe", "-allowed_extensions", "-enable_drefs", "-use_absolute_path"):
        assert bad not in argv
    inputs = [i for i, token in enumerate(argv) if token == "-i"]
    assert inputs, argv
    for at in inputs:
        before = argv[:at]
        # The guard options of *this* input: the last occurrence before its -i.
        last = {k: before[len(before) - 1 - before[::-1].index(k) + 1] for k in (
            "-protocol_whitelist", "-format_whitelist", "-max_pixels", "-max_streams")}  # fmt: skip
        assert last["-protocol_whitelist"] == "file"
        formats = set(last["-format_whitelist"].split(","))
        assert "mov" in formats
        assert "matroska" in formats
        assert not formats & FORBIDDEN_DEMUXERS
        assert int(last["-max_pixels"]) > 0
        assert int(last["-max_streams"]) > 0
        assert argv[at + 1].startswith("file:/")
        assert "-f" not in argv[inputs[0] - 12 : at]  # no forced demuxer for an input


@pytest.fixture
def assert_guarded() -> Callable[[list[str]], None]:
    """Checks one argv: every ``-i`` preceded by the guards, nothing weakening them."""
    return _assert_guarded


class HitCounter:
    """A loopback HTTP server that counts every request it receives."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.hits.append(self.path)
                body = b"#EXTM3U\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HitCounter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hit_counter() -> Iterator[HitCounter]:
    with HitCounter() as counter:
        yield counter
