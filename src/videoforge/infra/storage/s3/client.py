"""The boto3 clients of one bucket, their transfer settings, and the one place that turns
botocore's exceptions into the storage errors (:func:`translate`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import boto3
import boto3.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from videoforge.infra.storage.base import (
    InvalidRange,
    InvalidUpload,
    ObjectChanged,
    ObjectNotFound,
    StorageError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_INVALID_UPLOAD = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
MiB = 1024 * 1024


def translate(exc: Exception, what: str) -> StorageError:
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


class S3Base:
    """One bucket's clients and transfer settings, shared by every part of the store."""

    def __init__(
        self,
        bucket: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        path_style: bool = False,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
        list_page_size: int = 1000,
        max_concurrency: int = 4,
        copy_part_size: int = 256 * MiB,
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

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            try:
                return fn(*args, **kwargs)
            except _BOTO_ERRORS as exc:
                raise translate(exc, what) from exc

        return await anyio.to_thread.run_sync(call)
