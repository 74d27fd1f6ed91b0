"""S3 multipart uploads, with the planned part sizes checked against S3's own list of
parts before completing (S3 itself checks only the ETags and the 5 MiB minimum)."""

from __future__ import annotations

import builtins
import contextlib
from datetime import datetime

from videoforge.infra.storage.base import (
    CompletedPart,
    InvalidUpload,
    ObjectNotFound,
    strip_etag,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from videoforge.infra.storage.s3.client import S3Base


class S3Multipart(S3Base):
    """Create, complete, abort and list multipart uploads (part URLs: :mod:`.presign`)."""

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
