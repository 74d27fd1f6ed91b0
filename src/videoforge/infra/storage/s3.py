"""S3 (or any S3-compatible endpoint) behind the :class:`~.base.Storage` protocol.

boto3 is synchronous; every call runs in a worker thread (``anyio.to_thread``) so the
event loop never blocks on the network. Large files go through boto3's managed transfer
(multipart above ``multipart_threshold``).

Presigned URLs are built by a second client when ``S3_PUBLIC_ENDPOINT_URL`` is set: the
services may reach the store at an internal address (``http://minio:9000``) while
browsers need the public one, and a SigV4 signature covers the host, so the URL must be
signed for the host the browser will use. Signing makes no network call.

botocore errors are mapped once, in :func:`_translate`: 404 / ``NoSuchKey`` /
``NoSuchUpload`` become :class:`ObjectNotFound`, everything else (connection failures,
5xx, throttling) :class:`StorageError`.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import boto3
import boto3.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from videoforge.infra.storage.base import (
    CompletedPart,
    InvalidRange,
    InvalidUpload,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    PresignedPost,
    StorageError,
    check_range,
    content_disposition,
    normalize_metadata,
    strip_etag,
    validate_content_type,
    validate_expires,
    validate_key,
    validate_part_number,
    validate_prefix,
)
from videoforge.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_INVALID_UPLOAD = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
_DELETE_BATCH = 1000  # DeleteObjects' limit
_MiB = 1024 * 1024


def _translate(exc: Exception, what: str) -> StorageError:
    """One place that turns botocore's exceptions into ours."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND or status == 404:
            return ObjectNotFound(what)
        if code == "InvalidRange" or status == 416:
            return InvalidRange(f"{what}: range not satisfiable")
        if code in {"PreconditionFailed", "412"} or status == 412:
            return ObjectChanged(f"{what}: the object changed (ETag no longer matches)")
        if code in _INVALID_UPLOAD:
            return InvalidUpload(f"{what}: {code}: {error.get('Message', '')}")
        return StorageError(f"{what}: S3 error {code or status}: {error.get('Message', '')}")
    if isinstance(exc, boto3.exceptions.S3UploadFailedError):
        return StorageError(f"{what}: upload failed: {exc}")
    return StorageError(f"{what}: {type(exc).__name__}: {exc}")


_BOTO_ERRORS = (ClientError, BotoCoreError, boto3.exceptions.Boto3Error)


class S3Storage:
    """:class:`~.base.Storage` on one S3 bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        path_style: bool = False,
        multipart_threshold: int = 64 * _MiB,
        multipart_chunksize: int = 16 * _MiB,
        list_page_size: int = 1000,
        max_concurrency: int = 4,
        copy_part_size: int = 256 * _MiB,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.list_page_size = list_page_size
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=max(10, max_concurrency * 2),
        )
        # Own session: boto3's default session is not thread-safe to build clients from.
        session = boto3.session.Session()
        self.client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.presign_client: S3Client = (
            session.client("s3", endpoint_url=public_endpoint_url, config=config)
            if public_endpoint_url
            else self.client
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            use_threads=True,
        )
        # Server-side copies move no bytes through us: big parts, many at once, so a
        # large original is copied in parallel within the confirm request.
        self.copy_config = TransferConfig(
            multipart_threshold=copy_part_size,
            multipart_chunksize=copy_part_size,
            max_concurrency=max(10, max_concurrency),
            use_threads=True,
        )

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
            multipart_threshold=max(5 * _MiB, settings.upload_multipart_threshold),
            multipart_chunksize=settings.upload_part_size,
        )

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            try:
                return fn(*args, **kwargs)
            except _BOTO_ERRORS as exc:
                raise _translate(exc, what) from exc

        return await anyio.to_thread.run_sync(call)

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

    async def iter_bytes(self, key: str, *, chunk_size: int = _MiB) -> AsyncIterator[bytes]:
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

    # ------------------------------------------------------------ presigning
    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A presigned GET; the response headers it overrides are part of the signature."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": validate_key(key)}
        if download_name is not None:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        if content_type is not None:
            params["ResponseContentType"] = validate_content_type(content_type)
        return self.presign_client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=validate_expires(expires_in)
        )

    async def presign_put(
        self, key: str, *, expires_in: int, content_type: str, content_length: int | None = None
    ) -> str:
        """A presigned PUT with ``Content-Type`` (and ``Content-Length``) signed headers."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": validate_key(key),
            "ContentType": validate_content_type(content_type),
        }
        if content_length is not None:
            if content_length < 0:
                raise ValueError("content_length must not be negative")
            params["ContentLength"] = content_length
        return self.presign_client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=validate_expires(expires_in)
        )

    async def presign_post(
        self, key: str, *, expires_in: int, content_type: str, max_bytes: int
    ) -> PresignedPost:
        """A browser form upload whose policy pins the key, the type and ``1..max_bytes``."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        validate_content_type(content_type)
        post = self.presign_client.generate_presigned_post(
            Bucket=self.bucket,
            Key=validate_key(key),
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=validate_expires(expires_in),
        )
        return PresignedPost(url=post["url"], fields={k: str(v) for k, v in post["fields"].items()})

    # ------------------------------------------------------------- multipart
    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; returns its id."""
        response = await self._run(
            f"create multipart {key}",
            self.client.create_multipart_upload,
            Bucket=self.bucket,
            Key=validate_key(key),
            ContentType=validate_content_type(content_type),
        )
        return response["UploadId"]

    async def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int,
        content_length: int | None = None,
    ) -> str:
        """A presigned ``UploadPart`` URL; the client reads the part's ``ETag`` header.

        With ``content_length`` the ``Content-Length`` header is signed, so S3 refuses
        a body of any other length.
        """
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": validate_key(key),
            "UploadId": upload_id,
            "PartNumber": validate_part_number(part_number),
        }
        if content_length is not None:
            if content_length < 1:
                raise ValueError("content_length must be positive")
            params["ContentLength"] = content_length
        return self.presign_client.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=validate_expires(expires_in)
        )

    def _uploaded_parts(self, key: str, upload_id: str) -> dict[int, tuple[str | None, int]]:
        """{part number: (ETag, size)} of what S3 holds for the upload (sync)."""
        paginator = self.client.get_paginator("list_parts")
        found: dict[int, tuple[str | None, int]] = {}
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                found[int(part["PartNumber"])] = (strip_etag(part.get("ETag")), int(part["Size"]))
        return found

    async def complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[CompletedPart]
    ) -> None:
        """Assemble the parts (sorted by number, as S3 requires).

        Parts with an expected ``size`` are checked against S3's own list first: S3 only
        checks ETags (and the 5 MiB minimum), not that a part has the planned length.
        """
        if not parts:
            raise InvalidUpload("a multipart upload needs at least one part")
        ordered = sorted(parts, key=lambda p: p.part_number)
        validate_key(key)
        if any(p.size is not None for p in ordered):
            uploaded = await self._run(f"list parts {key}", self._uploaded_parts, key, upload_id)
            for part in ordered:
                etag, size = uploaded.get(part.part_number, (None, -1))
                if etag is None:
                    raise InvalidUpload(f"part {part.part_number} was not uploaded")
                if etag != strip_etag(part.etag):
                    raise InvalidUpload(f"part {part.part_number}: ETag does not match")
                if part.size is not None and size != part.size:
                    raise InvalidUpload(
                        f"part {part.part_number} has {size} bytes, not {part.size}"
                    )
        await self._run(
            f"complete multipart {key}",
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=validate_key(key),
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"ETag": f'"{strip_etag(p.etag)}"', "PartNumber": p.part_number}
                    for p in ordered
                ]
            },
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts; aborting an unknown upload is not an error."""
        with contextlib.suppress(ObjectNotFound):
            await self._run(
                f"abort multipart {key}",
                self.client.abort_multipart_upload,
                Bucket=self.bucket,
                Key=validate_key(key),
                UploadId=upload_id,
            )

    async def list_multipart_uploads(self, prefix: str) -> builtins.list[tuple[str, str, datetime]]:
        """In-progress multipart uploads under ``prefix``: (key, upload_id, initiated)."""
        validate_prefix(prefix)

        def run() -> builtins.list[tuple[str, str, datetime]]:
            paginator = self.client.get_paginator("list_multipart_uploads")
            found: builtins.list[tuple[str, str, datetime]] = []
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    found.append((upload["Key"], upload["UploadId"], upload["Initiated"]))
            return sorted(found)

        return await self._run(f"list multipart {prefix!r}", run)

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
