""":class:`S3Storage`: the :class:`~videoforge.infra.storage.base.Storage` protocol on one
S3 bucket: objects (every boto3 call in a worker thread) and the bucket itself."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from videoforge.infra.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    check_range,
    normalize_metadata,
    strip_etag,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from videoforge.infra.storage.s3.client import MiB
from videoforge.infra.storage.s3.multipart import S3Multipart
from videoforge.infra.storage.s3.presign import S3Presigning
from videoforge.settings import Settings

_DELETE_BATCH = 1000  # DeleteObjects' limit


class S3Storage(S3Presigning, S3Multipart):
    """:class:`~videoforge.infra.storage.base.Storage` on one S3 bucket."""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """The bucket ``S3_BUCKET_NAME`` at ``AWS_ENDPOINT_URL`` (or AWS itself)."""
        if not settings.s3_bucket_name:
            raise ValueError("S3_BUCKET_NAME is not set")
        return cls(
            settings.s3_bucket_name,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            path_style=settings.s3_path_style,
            multipart_threshold=max(5 * MiB, settings.upload_multipart_threshold),
            multipart_chunksize=settings.upload_part_size,
        )

    # ---------------------------------------------------------------- objects
    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Upload a local file (multipart above the threshold)."""
        extra = self._extra_args(key, content_type, metadata)
        await self._run(
            f"put {key}",
            self.client.upload_file,
            str(path),
            self.bucket,
            key,
            ExtraArgs=extra,
            Config=self.transfer_config,
        )

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``data`` as ``key`` in one PUT."""
        extra = self._extra_args(key, content_type, metadata)
        await self._run(
            f"put {key}", self.client.put_object, Bucket=self.bucket, Key=key, Body=data, **extra
        )

    @staticmethod
    def _extra_args(
        key: str, content_type: str | None, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        validate_key(key)
        extra: dict[str, Any] = {}
        if content_type is not None:
            extra["ContentType"] = validate_content_type(content_type)
        meta = normalize_metadata(metadata)
        if meta:
            extra["Metadata"] = meta
        return extra

    async def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path``; boto3 writes a temp file and renames it."""
        validate_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(
            f"get {key}",
            self.client.download_file,
            self.bucket,
            key,
            str(path),
            Config=self.transfer_config,
        )

    async def get_bytes(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        """The whole object, or the inclusive range ``start..end`` (``end`` is clamped)."""
        validate_key(key)
        check_range(start, end)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start is not None or end is not None:
            kwargs["Range"] = f"bytes={start or 0}-{'' if end is None else end}"

        def read() -> bytes:
            body = self.client.get_object(**kwargs)["Body"]
            with contextlib.closing(body):
                return body.read()

        return await self._run(f"get {key}", read)

    async def iter_bytes(self, key: str, *, chunk_size: int = MiB) -> AsyncIterator[bytes]:
        """Stream the object, each chunk read in a worker thread."""
        validate_key(key)
        response = await self._run(
            f"get {key}", self.client.get_object, Bucket=self.bucket, Key=key
        )
        body = response["Body"]
        try:
            while chunk := await self._run(f"read {key}", body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def copy(self, source: str, dest: str, *, if_match: str | None = None) -> None:
        """Server-side copy (multipart above the transfer threshold); with ``if_match``
        every request of the copy is conditional on the source's ETag."""
        validate_key(source)
        validate_key(dest)
        info = await self.head(source)
        if info is None:
            raise ObjectNotFound(source)
        extra: dict[str, Any] = {"MetadataDirective": "REPLACE"}
        # Stated explicitly: a multipart copy would not carry them over by itself.
        if info.content_type:
            extra["ContentType"] = info.content_type
        if info.metadata:
            extra["Metadata"] = info.metadata
        if if_match is not None:
            extra["CopySourceIfMatch"] = f'"{strip_etag(if_match)}"'
        await self._run(
            f"copy {source} -> {dest}",
            self.client.copy,
            {"Bucket": self.bucket, "Key": source},
            self.bucket,
            dest,
            ExtraArgs=extra,
            Config=self.copy_config,
        )

    async def head(self, key: str) -> ObjectInfo | None:
        """Size, type, ETag and metadata of ``key``, or ``None`` when it does not exist."""
        validate_key(key)
        try:
            response = await self._run(
                f"head {key}", self.client.head_object, Bucket=self.bucket, Key=key
            )
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            content_type=response.get("ContentType"),
            etag=strip_etag(response.get("ETag")),
            last_modified=response.get("LastModified"),
            metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
        )

    async def delete(self, key: str) -> None:
        """Delete ``key``; S3 already treats a missing key as success."""
        validate_key(key)
        await self._run(f"delete {key}", self.client.delete_object, Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under a non-empty ``prefix`` in batches of 1000."""
        validate_prefix(prefix, allow_empty=False)
        deleted = 0
        batch: builtins.list[str] = []
        async for info in self.list(prefix):
            batch.append(info.key)
            if len(batch) == _DELETE_BATCH:
                deleted += await self._delete_batch(batch)
                batch = []
        if batch:
            deleted += await self._delete_batch(batch)
        return deleted

    async def _delete_batch(self, keys: builtins.list[str]) -> int:
        response = await self._run(
            f"delete {len(keys)} objects",
            self.client.delete_objects,
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} objects, e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
        return len(keys)

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every key starting with ``prefix``, page by page (``list_page_size`` per page)."""
        validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        pages: Iterator[Any] = iter(
            paginator.paginate(
                Bucket=self.bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": self.list_page_size},
            )
        )
        sentinel: Any = object()
        while True:
            page = await self._run(f"list {prefix!r}", next, pages, sentinel)
            if page is sentinel:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item.get("Size", 0)),
                    etag=strip_etag(item.get("ETag")),
                    last_modified=item.get("LastModified"),
                )

    # -------------------------------------------------------------- operations
    async def check(self) -> None:
        """Readiness: the bucket answers ``HeadBucket``."""
        try:
            await self._run(f"bucket {self.bucket}", self.client.head_bucket, Bucket=self.bucket)
        except ObjectNotFound as exc:
            raise StorageError(f"bucket {self.bucket!r} does not exist") from exc

    async def ensure_bucket(self, cors_origins: builtins.list[str] | None = None) -> None:
        """Create the bucket when missing; with ``cors_origins``, allow browser uploads.

        The CORS rule allows GET/HEAD/PUT/POST from those origins with any header and
        exposes ``ETag`` (a multipart client must read each part's ETag). ``None``
        leaves the bucket's CORS configuration as it is.
        """
        try:
            await self._run(f"bucket {self.bucket}", self.client.head_bucket, Bucket=self.bucket)
        except ObjectNotFound:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":  # us-east-1 refuses an explicit constraint
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                await self._run(f"create bucket {self.bucket}", self.client.create_bucket, **kwargs)
            except StorageError as exc:
                # Another process created it between our HEAD and CREATE.
                if "BucketAlreadyOwnedByYou" not in str(exc):
                    raise
        if cors_origins:
            await self._run(
                f"cors {self.bucket}",
                self.client.put_bucket_cors,
                Bucket=self.bucket,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": list(cors_origins),
                            "AllowedMethods": ["GET", "HEAD", "PUT", "POST"],
                            "AllowedHeaders": ["*"],
                            "ExposeHeaders": [
                                "ETag",
                                "Content-Length",
                                "Content-Range",
                                "Accept-Ranges",
                            ],
                            "MaxAgeSeconds": 3600,
                        }
                    ]
                },
            )
