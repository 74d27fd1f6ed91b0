"""Failures of the worker's own machine, told apart from failures of the media.

A full disk makes ffmpeg's writes fail. Before ``onfail=abort`` the tee muxer dropped
the failed output, exited 0, and the empty MP4 left behind was blamed on the media
(``corrupt_media``, permanent): one full worker failed every large job it received.
Now any line in which ffmpeg reports that the machine failed it — whatever the exit
code — and any ``OSError`` of the same kind in our own code is a
:class:`LocalResourceError`: transient, the job released at once for another worker.

Only errors that a file's bytes cannot produce count (ENOSPC, EDQUOT, EROFS, EFBIG on
any line; EIO only on a line about writing output, since a demuxer may report a damaged
*input* as an I/O error). A hostile file must not be able to pass itself off as a disk
problem: local-resource failures do not count against a job's budget.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

LOCAL_RESOURCE = "local_resource"

#: strerror text (as ffmpeg prints it) -> reason.
_ANY_LINE = (
    ("no space left on device", "no_space"),  # ENOSPC
    ("disk quota exceeded", "disk_quota"),  # EDQUOT
    ("read-only file system", "read_only_fs"),  # EROFS
    ("file too large", "file_too_large"),  # EFBIG (RLIMIT_FSIZE, filesystem limits)
)
_EIO_TEXT = "input/output error"
#: Words of ffmpeg's messages about its outputs (muxers, segments, trailers, files opened
#: for writing). Not "header": "Error while reading header" is about the input.
_OUTPUT_WORDS = (
    "write",
    "writing",
    "muxer",
    "muxing",
    "segment",
    "trailer",
    "output",
    "closing",
    "flush",
)

_ERRNO_REASONS = {
    errno.ENOSPC: "no_space",
    errno.EDQUOT: "disk_quota",
    errno.EROFS: "read_only_fs",
    errno.EFBIG: "file_too_large",
    errno.EIO: "io_error",
}


class LocalResourceError(Exception):
    """The worker's machine could not do the work (no room, failing or read-only disk).

    Never the media's fault: the job goes back to the queue at once for another worker,
    and this worker stops receiving until it has room again. ``reason`` is stable
    (``no_space``, ``disk_quota``, ``read_only_fs``, ``file_too_large``, ``io_error``,
    ``declined``); ``needed``/``free`` are bytes when known.
    """

    code = LOCAL_RESOURCE

    def __init__(
        self, reason: str, message: str, *, needed: int | None = None, free: int | None = None
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.needed = needed
        self.free = free


def machine_failure(stderr: str) -> str | None:
    """The reason when ffmpeg's stderr says the machine failed it, else ``None``."""
    for line in stderr.lower().splitlines():
        for text, reason in _ANY_LINE:
            if text in line:
                return reason
        if _EIO_TEXT in line:
            rest = line.replace(_EIO_TEXT, "")
            if "input" not in rest and any(word in rest for word in _OUTPUT_WORDS):
                return "io_error"
    return None


def os_error_reason(exc: BaseException) -> str | None:
    """The reason when ``exc`` (or what caused it) is an ``OSError`` of the machine:
    a storage client wrapping a failed write to the work dir still counts."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, LocalResourceError):
            return current.reason
        if isinstance(current, OSError) and current.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[current.errno]
        current = current.__cause__ or current.__context__
    return None


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on ``path``'s filesystem (made if
    missing: the work dir may not exist before the first job)."""
    path.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize
