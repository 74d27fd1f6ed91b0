""":class:`LocalStorage`: the :class:`~videoforge.infra.storage.base.Storage` protocol on
a local directory, with its own signed URLs (see the package's docstring)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread

from videoforge.infra.secrets import storage_signing_key
from videoforge.infra.storage.base import ObjectInfo, check_range
from videoforge.infra.storage.local.files import CHUNK
from videoforge.infra.storage.local.multipart import LocalMultipart
from videoforge.infra.storage.local.presign import LocalPresigning
from videoforge.settings import Settings


class LocalStorage(LocalPresigning, LocalMultipart):
    """:class:`~videoforge.infra.storage.base.Storage` on a local directory with its own
    signed URLs."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        """The embedded store in ``settings.storage_dir``, URLs under ``PUBLIC_URL``."""
        return cls(
            settings.storage_dir,
            signing_key=storage_signing_key(settings),
            base_url=settings.public_url or "",
            max_put_bytes=max(settings.upload_max_bytes, settings.upload_part_size),
        )

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Copy a local file in as ``key``."""

        def run() -> None:
            with path.open("rb") as source:
                self._write(key, iter(lambda: source.read(CHUNK), b""), content_type, metadata)

        await anyio.to_thread.run_sync(run)

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``data`` as ``key``."""
        await anyio.to_thread.run_sync(lambda: self._write(key, [data], content_type, metadata))

    async def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path`` (atomically); raises :class:`ObjectNotFound`."""
        await anyio.to_thread.run_sync(self._copy_out, key, path)

    async def copy(self, source: str, dest: str, *, if_match: str | None = None) -> None:
        """Copy ``source`` (bytes, type, metadata, ETag) to ``dest``; with ``if_match``
        only the version with that ETag (:class:`ObjectChanged` otherwise)."""
        await anyio.to_thread.run_sync(self._copy, source, dest, if_match)

    async def get_bytes(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        """The whole object, or the inclusive range ``start..end`` (``end`` is clamped)."""
        check_range(start, end)
        return await anyio.to_thread.run_sync(self._read_range, key, start, end)

    async def iter_bytes(self, key: str, *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream the object in chunks."""
        handle, _ = await anyio.to_thread.run_sync(self.open_object, key)
        try:
            while chunk := await anyio.to_thread.run_sync(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def head(self, key: str) -> ObjectInfo | None:
        """Size, type, ETag and metadata of ``key``, or ``None`` when it does not exist."""
        return await anyio.to_thread.run_sync(self._head, key)

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        await anyio.to_thread.run_sync(self._delete, key)

    async def seal(self, key: str) -> None:
        """Delete ``key`` and refuse writes to it through signed URLs (409
        ``upload_closed``) until it is deleted again; the store's own writes still work.

        What S3 cannot do (a presigned URL works until it expires): the gallery seals an
        upload key once its upload is confirmed, so a replayed URL is refused outright.
        """
        await anyio.to_thread.run_sync(self._seal, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under a non-empty ``prefix``; returns how many."""
        return await anyio.to_thread.run_sync(self._delete_prefix, prefix)

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every key starting with ``prefix``, in key order."""
        for info in await anyio.to_thread.run_sync(self._list, prefix):
            yield info

    async def check(self) -> None:
        """Readiness: the directory exists (or can be made) and is writable."""
        await anyio.to_thread.run_sync(self._check)

    async def ensure_bucket(self, cors_origins: builtins.list[str] | None = None) -> None:
        """Create the storage directory (CORS is answered by the router itself)."""
        await self.check()
