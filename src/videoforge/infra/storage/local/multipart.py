"""Multipart uploads of the local store, with S3's rules (5 MiB minimum part size except
the last, ETags checked against the stored bytes, ``md5(part md5s)-N`` as the result's
ETag), so a client that works here works on S3 too.

An upload is a directory ``~multipart/<upload id>/`` holding ``upload.json`` and one
file per part, assembled into the object by :meth:`LocalMultipart._complete_multipart`.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import secrets
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

from videoforge.infra.storage.base import (
    MIN_PART_SIZE,
    CompletedPart,
    InvalidUpload,
    ObjectNotFound,
    strip_etag,
    validate_content_type,
    validate_key,
    validate_part_number,
    validate_prefix,
)
from videoforge.infra.storage.local.files import (
    CHUNK,
    MULTIPART_DIR,
    PendingWrite,
    check_upload_id,
    read_meta,
    utc,
)
from videoforge.infra.storage.local.objects import LocalObjects


class LocalMultipart(LocalObjects):
    """Multipart uploads on top of the store's objects."""

    def _upload_dir(self, upload_id: str) -> Path:
        return self.root / MULTIPART_DIR / check_upload_id(upload_id)

    def _create_multipart(self, key: str, content_type: str) -> str:
        validate_key(key)
        validate_content_type(content_type)
        upload_id = secrets.token_urlsafe(24)
        directory = self._upload_dir(upload_id)
        directory.mkdir(parents=True)
        doc = {"key": key, "content_type": content_type, "initiated": time.time()}
        (directory / "upload.json").write_text(json.dumps(doc), encoding="utf-8")
        return upload_id

    def _load_upload(self, key: str, upload_id: str) -> tuple[Path, dict[str, Any]]:
        directory = self._upload_dir(upload_id)
        doc = read_meta(directory / "upload.json")
        if doc.get("key") != key:
            raise ObjectNotFound(f"no multipart upload {upload_id!r} for {key!r}")
        return directory, doc

    def upload_exists(self, key: str, upload_id: str) -> bool:
        try:
            self._load_upload(key, upload_id)
        except ObjectNotFound:
            return False
        return True

    def commit_part(self, key: str, upload_id: str, part_number: int, pending: PendingWrite) -> str:
        """Store ``pending`` as one part (replacing an earlier upload of it); its ETag."""
        validate_part_number(part_number)
        directory, _ = self._load_upload(key, upload_id)
        pending.finish()
        try:
            os.replace(pending.path, directory / f"{part_number:05d}")
        except FileNotFoundError:
            pending.discard()
            raise ObjectNotFound(f"multipart upload {upload_id!r} is gone") from None
        return pending.etag

    def _complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[CompletedPart]
    ) -> None:
        directory, doc = self._load_upload(key, upload_id)
        if not parts:
            raise InvalidUpload("a multipart upload needs at least one part")
        ordered = sorted(parts, key=lambda p: p.part_number)
        if len({p.part_number for p in ordered}) != len(ordered):
            raise InvalidUpload("a part number is listed twice")
        pending = self.new_pending()
        digests = b""
        try:
            for part in ordered:
                part_md5 = hashlib.md5(usedforsecurity=False)
                try:
                    source = (directory / f"{part.part_number:05d}").open("rb")
                except FileNotFoundError:
                    raise InvalidUpload(f"part {part.part_number} was not uploaded") from None
                with source:
                    # As on S3, only the last part may be smaller than 5 MiB, so a client
                    # that works here works there too.
                    size = os.fstat(source.fileno()).st_size
                    if part is not ordered[-1] and size < MIN_PART_SIZE:
                        raise InvalidUpload(f"part {part.part_number} is smaller than 5 MiB")
                    if part.size is not None and size != part.size:
                        raise InvalidUpload(
                            f"part {part.part_number} has {size} bytes, not {part.size}"
                        )
                    while chunk := source.read(CHUNK):
                        part_md5.update(chunk)
                        pending.write(chunk)
                # The ETag the client saw is checked against the bytes actually stored.
                if part_md5.hexdigest() != strip_etag(part.etag):
                    raise InvalidUpload(f"part {part.part_number}: ETag does not match")
                digests += part_md5.digest()
            etag = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(ordered)}"
            self.commit_pending(key, pending, content_type=doc.get("content_type"), etag=etag)
        except BaseException:
            pending.discard()
            raise
        shutil.rmtree(directory, ignore_errors=True)

    def _list_multipart(self, prefix: str) -> builtins.list[tuple[str, str, datetime]]:
        validate_prefix(prefix)
        base = self.root / MULTIPART_DIR
        uploads: builtins.list[tuple[str, str, datetime]] = []
        if not base.is_dir():
            return uploads
        for directory in base.iterdir():
            doc = read_meta(directory / "upload.json")
            key = doc.get("key")
            if isinstance(key, str) and key.startswith(prefix):
                uploads.append((key, directory.name, utc(float(doc.get("initiated", 0)))))
        uploads.sort()
        return uploads

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; returns its id."""
        return await anyio.to_thread.run_sync(self._create_multipart, key, content_type)

    async def complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[CompletedPart]
    ) -> None:
        """Assemble the listed parts (ETags checked) into ``key``."""
        await anyio.to_thread.run_sync(self._complete_multipart, key, upload_id, parts)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts; aborting twice is not an error."""

        def run() -> None:
            try:
                directory, _ = self._load_upload(key, upload_id)
            except ObjectNotFound:
                return
            shutil.rmtree(directory, ignore_errors=True)

        await anyio.to_thread.run_sync(run)

    async def list_multipart_uploads(self, prefix: str) -> builtins.list[tuple[str, str, datetime]]:
        """In-progress multipart uploads under ``prefix``: (key, upload_id, initiated)."""
        return await anyio.to_thread.run_sync(self._list_multipart, prefix)
