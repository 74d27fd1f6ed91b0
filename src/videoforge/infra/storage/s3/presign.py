"""Presigned S3 URLs and form POSTs. Signing makes no network call; it uses the client
for the public endpoint when there is one, since a SigV4 signature covers the host."""

from __future__ import annotations

from typing import Any

from videoforge.infra.storage.base import (
    PresignedPost,
    content_disposition,
    validate_content_type,
    validate_expires,
    validate_key,
    validate_part_number,
)
from videoforge.infra.storage.s3.client import S3Base


class S3Presigning(S3Base):
    """Presigned GET, PUT, POST and ``UploadPart`` URLs."""

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
