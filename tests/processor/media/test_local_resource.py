"""A full disk is the machine's fault, never the media's: ffmpeg's stderr and our own
OSErrors are classified as local-resource failures, every tee slave aborts the run on a
failed write, and a real ffmpeg on a size-capped directory raises LocalResourceError
(not ``corrupt_media``)."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from videoforge.infra.storage.base import StorageError
from videoforge.processor.config import DEFAULT_RUNGS, ProcessingConfig
from videoforge.processor.ffmpeg import MediaRejected, ToolError
from videoforge.processor.ladder import plan_ladder
from videoforge.processor.pipeline import process_file
from videoforge.processor.probe import ProbeResult
from videoforge.processor.resources import (
    FULL_BELOW_BYTES,
    LocalResourceError,
    corroborates,
    machine_failure,
    os_error_reason,
)
from videoforge.processor.transcode import ladder_args

from ..conftest import CappedDir
from .conftest import Clips

CONFIG = ProcessingConfig(threads=1)

TEE_SLAVE_FAILED = (
    "[tee @ 0x55f1f26792c0] Slave muxer #1 failed: No space left on device, "
    "continuing with 1/2 slaves."
)


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        # The line from the incident: ffmpeg went on with one slave and exited 0.
        (TEE_SLAVE_FAILED, "no_space"),
        ("Error writing trailer of hls/720p/index.m3u8: No space left on device", "no_space"),
        ("av_interleaved_write_frame(): Disk quota exceeded", "disk_quota"),
        ("[mp4 @ 0x1] Could not open 'mp4/720p.mp4': Read-only file system", "read_only_fs"),
        ("[hls @ 0x1] Failed to open file 'seg_00001.m4s': File too large", "file_too_large"),
        ("Error submitting a packet to the muxer: Input/output error", "io_error"),
        ("[mp4 @ 0x1] Error writing trailer: Input/output error", "io_error"),
        ("Error opening output file out.mp4: Input/output error", "io_error"),
        # Among other lines, and in any case.
        ("frame=1\n[h264 @ 0x2] error while decoding MB\nNO SPACE LEFT ON DEVICE\n", "no_space"),
        # The media's faults (or nobody's yet): never the machine's.
        ("[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found", None),
        ("media-input: Invalid data found when processing input", None),
        ("[matroska,webm @ 0x1] Read error at pos. 1234 (0x4d2): Input/output error", None),
        ("Error opening input file file:/w/media-input: Input/output error", None),
        ("Error while reading header: Input/output error", None),
        ("[mov @ 0x1] stream 0, offset 0x30: partial file", None),
        # Memory can be exhausted by a hostile file: it stays an ordinary transient failure.
        ("[h264 @ 0x1] Cannot allocate memory", None),
        # Indented: the file's own metadata as ffmpeg dumps it (its uploader's words).
        ("  Metadata:\n    title           : No space left on device", None),
        ("    comment         : x\n                    : Read-only file system", None),
        ("", None),
    ],
)
def test_machine_failure_classifies_stderr(stderr: str, reason: str | None) -> None:
    assert machine_failure(stderr) == reason


@pytest.mark.parametrize(
    ("reason", "free", "read_only", "verified"),
    [
        ("no_space", 0, False, True),
        ("no_space", 4096, False, True),
        ("no_space", FULL_BELOW_BYTES - 1, False, True),
        ("no_space", 50 * 1024**3, False, False),  # "full", with 50 GB free: not so
        ("read_only_fs", 10**9, True, True),
        ("read_only_fs", 10**9, False, False),
        ("disk_quota", 0, False, False),  # nothing to look at: ffmpeg's word only
        ("io_error", 0, False, False),
        ("file_too_large", 0, False, False),
    ],
)
def test_corroborates(reason: str, free: int, read_only: bool, verified: bool) -> None:
    assert corroborates(reason, free=free, read_only=read_only) is verified


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no_space"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk_quota"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only_fs"),
        (OSError(errno.EFBIG, "File too large"), "file_too_large"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
        (LocalResourceError("declined", "needs 10 bytes"), "declined"),
        (OSError(errno.ENOENT, "No such file or directory"), None),
        (ValueError("no"), None),
        (MediaRejected("corrupt_media", "bad"), None),
    ],
)
def test_os_error_reason(exc: BaseException, reason: str | None) -> None:
    assert os_error_reason(exc) == reason


def _wrapped_enospc() -> None:
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as inner:
        raise StorageError("download failed") from inner


def test_os_error_reason_looks_through_wrappers() -> None:
    with pytest.raises(StorageError) as raised:
        _wrapped_enospc()
    assert os_error_reason(raised.value) == "no_space"


def _probe(width: int, height: int, *, audio: bool = True) -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=10.0,
        size=1_000_000,
        bit_rate=800_000,
        width=width,
        height=height,
        coded_width=width,
        coded_height=height,
        rotation=0,
        fps=25.0,
        video_codec="h264",
        audio_codec="aac" if audio else None,
        has_audio=audio,
        stream_count=2 if audio else 1,
    )


def test_every_tee_slave_aborts_the_run_on_a_failed_write() -> None:
    probe = _probe(1920, 1080)
    renditions = plan_ladder(1920, 1080, 25.0, DEFAULT_RUNGS)
    args = ladder_args(renditions, probe, CONFIG)
    targets = [args[i + 1] for i, token in enumerate(args) if token == "tee"]
    slaves = [slave for target in targets for slave in target.split("|")]
    # At least an HLS variant and an MP4 per rendition, however they are grouped.
    assert len(slaves) >= 2 * len(renditions)
    for slave in slaves:
        options = slave[1 : slave.index("]")].split(":")
        assert "onfail=abort" in options, slave


async def test_real_ffmpeg_on_a_full_disk_is_a_local_resource_failure(
    clips: Clips, capped_dir: Callable[..., CappedDir], tmp_path: Path
) -> None:
    # Room for the first segments, not for the whole ladder (~1 MB of outputs); the
    # source stays outside (the pipeline links it).
    capped = capped_dir(400 * 1024, per_file=100 * 1024)
    source = tmp_path / "source.mp4"
    shutil.copy(clips.landscape, source)
    with pytest.raises(LocalResourceError) as raised:
        await process_file(source, capped.path, CONFIG)
    expected = "no_space" if capped.how == "tmpfs" else "file_too_large"
    assert raised.value.reason == expected
    assert raised.value.verified  # the full tmpfs (or the kernel's SIGXFSZ) bears it out
    assert not isinstance(raised.value, MediaRejected | ToolError)

    # The same source with room is fine: it was the disk, not the media.
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    result = await process_file(source, roomy, CONFIG)
    assert result.total_size > capped.size
