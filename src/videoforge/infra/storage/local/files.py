"""On-disk primitives of the local store: the layout's names, segment encoding,
directory locks and pending writes (see the package's docstring for the layout)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from videoforge.infra.storage.base import ObjectNotFound, StorageError

DATA_SUFFIX = "~o"
META_SUFFIX = "~m"
TMP_DIR = "~tmp"
MULTIPART_DIR = "~multipart"
CHUNK = 1024 * 1024

_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")
_MAX_NAME = 200  # well under NAME_MAX (255) once the ~o / ~m suffix is added
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def encode_segment(segment: str) -> str:
    """One key segment as a file name (percent-encoded, long ones shortened)."""
    encoded = "".join(
        ch if ch in _SAFE_CHARS else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in segment
    )
    if len(encoded) > _MAX_NAME:
        # Still unique (the hash is of the whole segment) and still readable at a glance.
        digest = hashlib.sha256(segment.encode("utf-8")).hexdigest()[:40]
        encoded = f"{encoded[:120]}~h{digest}"
    return encoded


def check_upload_id(upload_id: str) -> str:
    """A multipart upload id of the shape this store makes; anything else is unknown."""
    if not _UPLOAD_ID.match(upload_id):
        raise ObjectNotFound(f"no such multipart upload: {upload_id!r}")
    return upload_id


@contextlib.contextmanager
def dir_lock(directory: Path, *, exclusive: bool, required: bool = False) -> Iterator[None]:
    """``flock`` on a directory: writers (exclusive) swap an object's metadata and data
    together; readers (shared) see both from the same write. Works across the embedded
    app and its worker processes. A missing directory holds nothing to protect, so
    only a writer about to rename into it (``required``) treats that as an error."""
    if fcntl is None:  # pragma: no cover - not POSIX: renames alone
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        if required:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


class KeySealed(StorageError):
    """A signed URL tried to write a key that :meth:`LocalStorage.seal` closed."""


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def read_meta(meta_path: Path) -> dict[str, Any]:
    """A metadata document (or ``upload.json``); ``{}`` when missing or unreadable."""
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


class PendingWrite:
    """A temporary file being filled; becomes an object or a part when committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._file: IO[bytes] | None = path.open("xb")

    def write(self, data: bytes) -> None:
        assert self._file is not None, "write after finish"
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    @property
    def md5(self) -> bytes:
        return self._md5.digest()

    @property
    def etag(self) -> str:
        return self._md5.hexdigest()

    def finish(self) -> None:
        """Flush to disk: once renamed, the bytes must survive a crash."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)
