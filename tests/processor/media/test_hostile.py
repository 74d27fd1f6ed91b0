"""Hostile inputs through process_file: nothing outside the job is read, nothing is fetched."""

from __future__ import annotations

import logging
import os
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import MediaRejected, process_file

from .fifo import watch_fifo

CONFIG = ProcessingConfig(threads=1)


def hls_playlist(*targets: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0"]
    for target in targets:
        lines += ["#EXTINF:10.0,", target]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def all_text_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


async def test_hls_playlist_disguised_as_mp4_cannot_read_a_local_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"TOPSECRET-{uuid.uuid4().hex}"
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    job = tmp_path / "job"
    job.mkdir()
    source = job / "upload.mp4"
    source.write_text(
        hls_playlist(f"file://{secret_file}", str(secret_file), "../secret.txt", "secret.txt")
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MediaRejected) as caught:
        await process_file(source, job / "work", CONFIG)
    assert caught.value.code == "unsupported_format"
    assert secret not in str(caught.value)
    assert secret.encode() not in all_text_under(job / "work")
    assert secret not in caplog.text


async def test_playlist_target_is_never_even_opened(tmp_path: Path) -> None:
    """The target is a FIFO: a writer can open it only while somebody has it open to read."""
    fifo = tmp_path / "target.ts"
    os.mkfifo(fifo)
    source = tmp_path / "upload.mp4"
    source.write_text(hls_playlist(str(fifo)))
    with watch_fifo(fifo) as watch, pytest.raises(MediaRejected) as caught:
        await process_file(source, tmp_path / "work", CONFIG)
    assert caught.value.code == "unsupported_format"
    assert not watch.opened.is_set()
    assert watch.surprises == []


async def test_playlist_pointing_at_a_loopback_url_makes_no_request(
    tmp_path: Path, hit_counter: Any
) -> None:
    # The counter works: a direct request is counted (so 0 below means "never asked").
    with urllib.request.urlopen(f"{hit_counter.url}/probe-the-counter", timeout=5) as response:
        response.read()
    assert hit_counter.hits == ["/probe-the-counter"]
    hit_counter.hits.clear()

    source = tmp_path / "upload.mp4"
    source.write_text(
        hls_playlist(f"{hit_counter.url}/seg0.ts", f"http://localhost:{hit_counter.port}/x.ts")
    )
    master = tmp_path / "master.mkv"  # a master playlist with variant URLs, other extension
    master.write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" + f"{hit_counter.url}/variant.m3u8\n"
    )
    for path in (source, master):
        with pytest.raises(MediaRejected) as caught:
            await process_file(path, tmp_path / "work", CONFIG)
        assert caught.value.code == "unsupported_format"
    assert hit_counter.hits == []


@pytest.mark.parametrize(
    "script",
    [
        "ffconcat version 1.0\nfile '{secret}'\n",
        "file '{secret}'\n",
    ],
)
async def test_concat_list_disguised_as_video(tmp_path: Path, script: str) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"\x00" * 64)
    source = tmp_path / "upload.mp4"
    source.write_text(script.format(secret=secret))
    with pytest.raises(MediaRejected) as caught:
        await process_file(source, tmp_path / "work", CONFIG)
    assert caught.value.code == "unsupported_format"


async def test_truncated_faststart_mp4_is_refused_not_published_short(
    clips: Any, tmp_path: Path
) -> None:
    import subprocess

    faststart = tmp_path / "faststart.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clips.small), "-c", "copy",
         "-movflags", "+faststart", str(faststart)],
        check=True,
    )  # fmt: skip
    data = faststart.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # the index survives, half the media does not
    with pytest.raises(MediaRejected) as caught:
        await process_file(truncated, tmp_path / "work", CONFIG)
    assert caught.value.code == "corrupt_media"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (os.urandom(64 * 1024), "unsupported_format"),
        (b"<html><script>alert(1)</script></html>" * 50, "unsupported_format"),
    ],
)
async def test_empty_random_and_mislabelled_files(
    tmp_path: Path, content: bytes, code: str
) -> None:
    source = tmp_path / "upload"
    source.write_bytes(content)
    with pytest.raises(MediaRejected) as caught:
        await process_file(source, tmp_path / "work", CONFIG)
    assert caught.value.code == code


async def test_resolution_and_duration_bombs_fail_before_any_encode(
    clips: Any, tmp_path: Path
) -> None:
    spawned: list[list[str]] = []
    from videoforge.processor import runner

    remove = runner.observe_spawns(spawned.append)
    try:
        with pytest.raises(MediaRejected) as big:
            await process_file(clips.huge_png, tmp_path / "a", CONFIG)
        with pytest.raises(MediaRejected) as long:
            await process_file(clips.small, tmp_path / "b", CONFIG.with_overrides(max_duration=1))
    finally:
        remove()
    assert (big.value.code, long.value.code) == ("resolution_too_large", "duration_too_long")
    # Only ffprobe ran: the transcoder never saw either file.
    assert [Path(argv[0]).name for argv in spawned] == ["ffprobe", "ffprobe"]
