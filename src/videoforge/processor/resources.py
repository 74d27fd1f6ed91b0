"""Failures of the worker's own machine, told apart from failures of the media.

A full disk makes ffmpeg's writes fail. Without ``onfail=abort`` the tee muxer drops
the failed output and exits 0, and the empty MP4 left behind would be blamed on the
media (``corrupt_media``, permanent): one full worker would fail every large job it
received. So any line in which ffmpeg reports that the machine failed it — whatever the
exit code — and any ``OSError`` of the same kind in our own code is a
:class:`LocalResourceError`: transient, the job released at once for another worker.

Only errors that a file's bytes cannot produce count (ENOSPC, EDQUOT, EROFS, EFBIG on
any line; EIO only on a line about writing output, since a demuxer may report a damaged
*input* as an I/O error), and never on an indented line: that is where ffmpeg dumps a
file's metadata, whose text the uploader chose.

A hostile file must still not be able to pass itself off as a disk problem for free, so
a failure is **verified** (it does not count against the job's budget) only when this
machine confirms it: the errno came from our own system call, the kernel sent SIGXFSZ,
or ffmpeg's "no space" / "read-only" is borne out by the filesystem itself
(:func:`corroborates`). An unverified one (quota, EIO, EFBIG as ffmpeg tells it) is
still the machine's kind of failure — never ``corrupt_media`` — but its attempt counts.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

LOCAL_RESOURCE = "local_resource"
#: A filesystem with less than this free right after a write failed with ENOSPC is full.
FULL_BELOW_BYTES = 64 * 1024**2

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
    ``declined``); ``needed``/``free`` are bytes when known. ``verified`` says whether
    this machine confirmed it (see the module docs): only then is the attempt free.
    """

    code = LOCAL_RESOURCE

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        needed: int | None = None,
        free: int | None = None,
        verified: bool = True,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.needed = needed
        self.free = free
        self.verified = verified


def machine_failure(stderr: str) -> str | None:
    """The reason when ffmpeg's stderr says the machine failed it, else ``None``."""
    for line in stderr.lower().splitlines():
        if line[:1].isspace():
            continue  # "    title : ..." - the file's own words
        for text, reason in _ANY_LINE:
            if text in line:
                return reason
        if _EIO_TEXT in line:
            rest = line.replace(_EIO_TEXT, "")
            if "input" not in rest and any(word in rest for word in _OUTPUT_WORDS):
                return "io_error"
    return None


def corroborates(reason: str, *, free: int, read_only: bool) -> bool:
    """Whether the state of the output filesystem bears out what ffmpeg said."""
    if reason == "no_space":
        return free < FULL_BELOW_BYTES
    if reason == "read_only_fs":
        return read_only
    return False  # quota, EIO, EFBIG: nothing to look at from here


def verify(reason: str, path: Path) -> bool:
    """:func:`corroborates` on ``path``'s filesystem as it is now."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return corroborates(
        reason,
        free=stats.f_bavail * stats.f_frsize,
        read_only=bool(stats.f_flag & os.ST_RDONLY),
    )


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


def is_verified(exc: BaseException) -> bool:
    """Whether a local-resource failure was confirmed by this machine: an ``OSError`` of
    our own system call is; a :class:`LocalResourceError` says so itself."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, LocalResourceError):
            return current.verified
        if isinstance(current, OSError) and current.errno in _ERRNO_REASONS:
            return True
        current = current.__cause__ or current.__context__
    return False


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on ``path``'s filesystem (made if
    missing: the work dir may not exist before the first job)."""
    path.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize
