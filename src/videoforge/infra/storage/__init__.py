"""Object storage: the :class:`Storage` protocol (see base.py) and its two backends.

:func:`build_storage` picks S3 when ``S3_BUCKET_NAME`` is set, the local directory
store otherwise. The local store's signed URLs are served by :data:`.http.routes.router`.
"""

from __future__ import annotations

from videoforge.infra.storage.base import (
    CompletedPart,
    InvalidKey,
    InvalidMetadata,
    InvalidRange,
    InvalidUpload,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    PresignedPost,
    Storage,
    StorageError,
    content_disposition,
    validate_key,
)
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.infra.storage.s3.store import S3Storage
from videoforge.settings import Settings, StorageBackend

__all__ = [
    "CompletedPart",
    "InvalidKey",
    "InvalidMetadata",
    "InvalidRange",
    "InvalidUpload",
    "LocalStorage",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectNotFound",
    "PresignedPost",
    "S3Storage",
    "Storage",
    "StorageError",
    "build_storage",
    "content_disposition",
    "validate_key",
]


def build_storage(settings: Settings) -> Storage:
    """S3Storage when ``S3_BUCKET_NAME`` is set (with CloudFront URLs for playback when
    ``CLOUDFRONT_URL`` is), LocalStorage in the data dir otherwise.

    Builds clients only; nothing connects until the first call (or :meth:`check`).
    """
    if settings.storage_backend is StorageBackend.S3:
        if settings.cloudfront_url:
            from videoforge.infra.storage.cdn import CloudFrontStorage

            return CloudFrontStorage.from_settings(settings)
        return S3Storage.from_settings(settings)
    return LocalStorage.from_settings(settings)
