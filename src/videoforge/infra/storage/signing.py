"""HMAC-SHA256 signed, expiring grants for the local object store's URLs.

A :class:`Grant` is everything a URL allows: one operation on one key until a time,
plus, for uploads, the exact content type and the length limit (and, for multipart
parts, the upload id and part number). The signature covers a canonical JSON encoding
of every field, so changing any of them — the key in the path, the method, the content
type, the limit, the expiry — invalidates the URL.

The signing key is never the server secret itself: it is derived from it for this purpose
alone, or from ``STORAGE_SIGNING_KEY`` (``videoforge.infra.secrets.storage_signing_key``),
so a leaked storage URL key cannot mint anything else and the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum

_VERSION = "v1"


class Op(StrEnum):
    """What a signed URL allows. ``GET`` URLs also answer ``HEAD``."""

    GET = "get"
    PUT = "put"
    PART = "part"
    POST = "post"


@dataclass(frozen=True)
class Grant:
    op: Op
    key: str
    expires: int
    content_type: str | None = None
    #: PUT: the exact length when signed; POST: the maximum length.
    length: int | None = None
    download_name: str | None = None
    response_content_type: str | None = None
    upload_id: str | None = None
    part_number: int | None = None

    def canonical(self) -> bytes:
        # A JSON array is unambiguous whatever the values contain (no separator games).
        return json.dumps(
            [
                _VERSION,
                self.op.value,
                self.key,
                self.expires,
                self.content_type,
                self.length,
                self.download_name,
                self.response_content_type,
                self.upload_id,
                self.part_number,
            ],
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")


class UrlSigner:
    """Signs and verifies :class:`Grant` s with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("storage signing key must be at least 16 bytes")
        self._key = key

    def sign(self, grant: Grant) -> str:
        digest = hmac.new(self._key, grant.canonical(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, grant: Grant, signature: str) -> bool:
        """Constant-time comparison of ``signature`` with the grant's own."""
        return hmac.compare_digest(self.sign(grant).encode("ascii"), signature.encode("utf-8"))
