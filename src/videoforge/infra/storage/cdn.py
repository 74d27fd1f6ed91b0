"""Playback bytes through CloudFront: signed CDN URLs in front of the private bucket.

With ``CLOUDFRONT_URL`` (and its key pair) set, :class:`CloudFrontStorage` is the S3
store whose plain GET URLs (segments, MP4s, stills, captions) are CloudFront signed URLs
with a canned policy, instead of S3 presigned ones; the distribution reads the bucket
through origin access control, so the bucket stays private. Everything else (uploads,
downloads with an attachment name or a content type, which S3 must override on the
response) stays on S3 presigned URLs.

Expiry is rounded up to a window (``CLOUDFRONT_URL_WINDOW``): within a window every
viewer gets the same URL for an object, so browsers and the CDN can reuse it, and it is
signed once per window. A URL is valid for at least the requested time and at most one
window more.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast
from urllib.parse import quote

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from videoforge.infra.storage.base import validate_expires, validate_key
from videoforge.infra.storage.s3.store import S3Storage
from videoforge.settings import Settings

_CACHE_SIZE = 4096


class CloudFrontUrls:
    """Signs ``{base_url}/{key}`` URLs with CloudFront's canned policy (RSA-SHA1)."""

    def __init__(
        self,
        base_url: str,
        *,
        key_pair_id: str,
        private_key_pem: bytes,
        window: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the CloudFront private key must be an RSA key (PEM)")
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.key_pair_id = key_pair_id
        self.window = max(1, window)
        self._clock = clock
        self._signer = CloudFrontSigner(key_pair_id, self._rsa_sign)
        self._signed: OrderedDict[tuple[str, int], str] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudFrontUrls | None:
        if not settings.cloudfront_url:
            return None
        assert settings.cloudfront_key_pair_id is not None
        pem = settings.cloudfront_private_key_pem()
        return cls(
            settings.cloudfront_url,
            key_pair_id=settings.cloudfront_key_pair_id,
            private_key_pem=pem,
            window=settings.cloudfront_url_window,
        )

    def _rsa_sign(self, message: bytes) -> bytes:
        # CloudFront's signed URLs are RSA-SHA1 (PKCS#1 v1.5) over the policy: its format.
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

    def expiry(self, expires_in: int) -> int:
        """``now + expires_in``, rounded up to the window."""
        deadline = self._clock() + validate_expires(expires_in)
        return int(math.ceil(deadline / self.window) * self.window)

    def sign(self, key: str, *, expires_in: int) -> str:
        """A signed URL for ``key``: the same one for every caller within a window."""
        expires = self.expiry(expires_in)
        resource = f"{self.base_url}/{quote(validate_key(key))}"
        cached = self._signed.get((resource, expires))
        if cached is not None:
            self._signed.move_to_end((resource, expires))
            return cached
        url: str = self._signer.generate_presigned_url(
            resource, date_less_than=datetime.fromtimestamp(expires, UTC)
        )
        self._signed[(resource, expires)] = url
        if len(self._signed) > _CACHE_SIZE:
            self._signed.popitem(last=False)
        return url


class CloudFrontStorage(S3Storage):
    """The S3 store, with plain GET URLs signed for CloudFront."""

    cdn: CloudFrontUrls | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudFrontStorage:
        store = cast(CloudFrontStorage, super().from_settings(settings))
        store.cdn = CloudFrontUrls.from_settings(settings)
        return store

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A CloudFront signed URL; S3's own for a download name or content type (the
        response headers S3 overrides are part of its signature, not the CDN's)."""
        if self.cdn is None or download_name is not None or content_type is not None:
            return await super().presign_get(
                key, expires_in=expires_in, download_name=download_name, content_type=content_type
            )
        return self.cdn.sign(key, expires_in=expires_in)
