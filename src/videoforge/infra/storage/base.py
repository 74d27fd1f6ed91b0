"""The object storage interface. Everything is addressed by key, never by local path.

Two implementations: :mod:`.s3` (boto3, any S3-compatible endpoint) and :mod:`.local`
(a directory, with HMAC-signed expiring URLs served by :mod:`.http`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """A transient storage failure (network, server). Callers may retry."""


class ObjectNotFound(StorageError):
    """The key does not exist."""


class InvalidKey(ValueError):
    """A key that could escape its namespace (``..``, absolute, NUL, backslash...)."""


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

    async def get_bytes(self, key: str, *, start: int | None = None, end: int | None = None) -> bytes:
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
        self, key: str, upload_id: str, part_number: int, *, expires_in: int
    ) -> str: ...

    async def complete_multipart(
        self, key: str, upload_id: str, parts: list[CompletedPart]
    ) -> None: ...

    async def abort_multipart(self, key: str, upload_id: str) -> None: ...

    async def list_multipart_uploads(self, prefix: str) -> list[tuple[str, str, datetime]]:
        """In-progress multipart uploads under ``prefix``: (key, upload_id, initiated)."""

    async def check(self) -> None:
        """Readiness: raise :class:`StorageError` when the store cannot be reached."""
