"""The object storage interface. Everything is addressed by key, never by local path.

Two implementations: :mod:`.s3` (boto3, any S3-compatible endpoint) and :mod:`.local`
(a directory, with HMAC-signed expiring URLs served by :mod:`.http`). Both behave the
same way (``tests/infra/storage/test_contract.py`` runs one suite on both):

- Keys pass :func:`validate_key` or raise :class:`InvalidKey` before anything happens.
- ETags (``ObjectInfo.etag``, ``CompletedPart.etag``) compare without their quotes;
  a multipart object's ETag is ``md5(part md5s)-N``.
- ``list`` yields in key order; a prefix is a plain string prefix (``a/b`` matches
  ``a/bc``). ``delete_prefix`` refuses the empty prefix.
- ``get_bytes`` raises :class:`InvalidRange` when ``start`` is at or past the end;
  ``end`` is clamped to the last byte.
- User metadata names are lower-cased and values must be printable ASCII
  (:class:`InvalidMetadata`), as S3 carries them in headers.
- Both also have ``ensure_bucket(cors_origins=None)`` (create the bucket / directory)
  for development, tests and compose; it is not part of the protocol.
"""

from __future__ import annotations

import builtins
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote


class StorageError(Exception):
    """A transient storage failure (network, server). Callers may retry."""


class ObjectNotFound(StorageError):
    """The key does not exist."""


class InvalidKey(ValueError):
    """A key that could escape its namespace (``..``, absolute, NUL, backslash...)."""


class InvalidRange(StorageError):
    """A byte range that starts at or beyond the end of the object."""


class InvalidUpload(StorageError):
    """A multipart completion that does not match what was uploaded (missing part,
    wrong ETag, part too small). Not transient: retrying the same call fails again."""


class ObjectChanged(StorageError):
    """A conditional operation (``if_match``) found the object no longer has that ETag.
    Not transient: the object really changed since the caller looked at it."""


class InvalidMetadata(ValueError):
    """User metadata or a content type that S3 could not carry as a header."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None
    last_modified: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PresignedPost:
    """A browser form upload: POST ``fields`` + the file (last) to ``url``."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class CompletedPart:
    part_number: int
    etag: str
    #: The size the part must have; the store refuses the completion otherwise.
    size: int | None = None


@runtime_checkable
class Storage(Protocol):
    """Async object storage with presigned URLs and multipart uploads."""

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None: ...

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None: ...

    async def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path``; raises :class:`ObjectNotFound`."""

    async def get_bytes(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        """Read a whole (small) object, or the inclusive byte range ``start..end``."""

    def iter_bytes(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Stream an object's bytes."""

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None:
        """Delete one key; deleting a missing key is not an error."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many."""

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]: ...

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A URL that GETs (and HEADs) ``key`` until it expires.

        With ``download_name`` the response is ``Content-Disposition: attachment``.
        """

    async def presign_put(
        self, key: str, *, expires_in: int, content_type: str, content_length: int | None = None
    ) -> str:
        """A URL for one PUT of ``key`` with exactly this content type (and length, if given)."""

    async def presign_post(
        self, key: str, *, expires_in: int, content_type: str, max_bytes: int
    ) -> PresignedPost:
        """A form POST whose policy limits the size to ``1..max_bytes``."""

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; returns its upload id."""

    async def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int,
        content_length: int | None = None,
    ) -> str:
        """A URL to PUT one part; with ``content_length`` only a body of exactly that
        many bytes is accepted (S3 signs the header, the local store checks it)."""

    async def complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[CompletedPart]
    ) -> None:
        """Assemble ``parts``; :class:`InvalidUpload` when one is missing, has another
        ETag or (given ``CompletedPart.size``) another size; :class:`ObjectNotFound`
        when the upload is gone (completed or aborted)."""

    async def copy(self, source: str, dest: str, *, if_match: str | None = None) -> None:
        """Copy ``source`` to ``dest`` (type and metadata too). With ``if_match`` only
        the version with that ETag is copied, else :class:`ObjectChanged`;
        :class:`ObjectNotFound` when ``source`` does not exist."""

    async def abort_multipart(self, key: str, upload_id: str) -> None: ...

    async def list_multipart_uploads(self, prefix: str) -> builtins.list[tuple[str, str, datetime]]:
        """In-progress multipart uploads under ``prefix``: (key, upload_id, initiated)."""

    async def check(self) -> None:
        """Readiness: raise :class:`StorageError` when the store cannot be reached."""


# --------------------------------------------------------------------------- validation
#: S3's own limits; the local store enforces the same ones so both backends agree.
MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
MAX_PART_NUMBER = 10_000
#: Every part but the last must be at least this big (S3's EntityTooSmall).
MIN_PART_SIZE = 5 * 1024 * 1024

# Unicode categories refused anywhere in a key: control, format (bidi overrides, RTL/LTR
# marks, zero-width characters), surrogates, private use, unassigned, line/paragraph
# separators. Keys are generated by the server, so nothing legitimate needs them, and they
# are how a name is made to look like something it is not.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidKey`.

    Refused: empty, over 1024 UTF-8 bytes, absolute, backslashes, NUL and other control
    or invisible characters, empty segments (``a//b``, trailing ``/``) and ``.``/``..``.
    Both stores apply the same rules so a key valid on one is valid on the other.
    """
    if not isinstance(key, str) or key == "":
        raise InvalidKey("object key must be a non-empty string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey("object key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey("object key must be relative")
    if "\\" in key:
        raise InvalidKey("object key must not contain a backslash")
    for ch in key:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise InvalidKey(f"object key contains a forbidden character U+{ord(ch):04X}")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidKey("object key has an empty segment")
        if segment in {".", ".."}:
            raise InvalidKey("object key must not contain '.' or '..' segments")
    return key


def validate_prefix(prefix: str, *, allow_empty: bool = True) -> str:
    """Like :func:`validate_key` for a listing prefix: may be empty or end with ``/``."""
    if prefix == "":
        if not allow_empty:
            raise InvalidKey("prefix must not be empty")
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def validate_content_type(content_type: str) -> str:
    """A content type must be printable ASCII (it travels as an HTTP header and is signed)."""
    if not content_type or len(content_type) > 255:
        raise InvalidMetadata("content type must be 1..255 characters")
    if any(not (0x20 <= ord(ch) < 0x7F) for ch in content_type):
        raise InvalidMetadata("content type must be printable ASCII")
    return content_type


def normalize_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata as S3 keeps it: lower-case names, printable ASCII values, <= 2 KB."""
    if not metadata:
        return {}
    out: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        lowered = name.lower()
        if not _METADATA_NAME.match(lowered):
            raise InvalidMetadata(f"metadata name {name!r} must be [a-z0-9_-]")
        if any(not (0x20 <= ord(ch) < 0x7F) for ch in value):
            raise InvalidMetadata(f"metadata value for {name!r} must be printable ASCII")
        total += len(lowered) + len(value)
        out[lowered] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidMetadata(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return out


def validate_expires(expires_in: int) -> int:
    """Presigned URL lifetimes are 1 second .. 7 days (S3's SigV4 maximum)."""
    if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
    return expires_in


def validate_part_number(part_number: int) -> int:
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be between 1 and {MAX_PART_NUMBER}")
    return part_number


def strip_etag(etag: str | None) -> str | None:
    """ETags compare without their HTTP quotes (S3 returns them quoted)."""
    if etag is None:
        return None
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def content_disposition(download_name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    # Keep only the last path component and drop characters that break the header.
    name = download_name.replace("\\", "/").rsplit("/", 1)[-1]
    name = (
        "".join(ch for ch in name if unicodedata.category(ch) not in _REFUSED_CATEGORIES).strip()
        or "download"
    )
    fallback = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in {'"', "%", ";"} else "_" for ch in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def check_range(start: int | None, end: int | None) -> None:
    """Refuse negative or inverted ranges before asking either backend."""
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise ValueError("byte range bounds must not be negative")
    if start is not None and end is not None and start > end:
        raise ValueError("byte range start is after its end")
