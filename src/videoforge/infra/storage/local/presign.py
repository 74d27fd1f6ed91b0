"""Signed URLs of the local store: what each grants is signed (:mod:`..signing`) into
the URL itself, and :mod:`videoforge.infra.storage.http` checks it on every request.

``{base_url}/storage/o/{key}?op=...&exp=...&sig=...`` for GET, PUT and multipart parts;
``{base_url}/storage/upload`` with signed form fields for a browser form POST.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from videoforge.infra.storage.base import (
    PresignedPost,
    validate_content_type,
    validate_expires,
    validate_key,
    validate_part_number,
)
from videoforge.infra.storage.local.files import check_upload_id
from videoforge.infra.storage.local.objects import LocalObjects
from videoforge.infra.storage.signing import Grant, Op
from videoforge.paths import STORAGE_PREFIX

ROUTE_PREFIX = STORAGE_PREFIX
OBJECT_ROUTE = ROUTE_PREFIX + "/o/"
POST_ROUTE = ROUTE_PREFIX + "/upload"
#: Form field names of a presigned POST (besides ``key`` and ``Content-Type``).
POST_EXPIRES_FIELD = "x-vf-expires"
POST_MAX_FIELD = "x-vf-max-bytes"
POST_SIGNATURE_FIELD = "x-vf-signature"


class LocalPresigning(LocalObjects):
    """Presigned GET, PUT, POST and part URLs, signed with the store's key."""

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A signed URL that GETs and HEADs ``key`` until it expires."""
        if content_type is not None:
            validate_content_type(content_type)
        grant = Grant(
            op=Op.GET,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            download_name=download_name,
            response_content_type=content_type,
        )
        return self.object_url(grant)

    async def presign_put(
        self, key: str, *, expires_in: int, content_type: str, content_length: int | None = None
    ) -> str:
        """A signed URL for one PUT with exactly this content type (and length, if given)."""
        if content_length is not None and content_length < 0:
            raise ValueError("content_length must not be negative")
        grant = Grant(
            op=Op.PUT,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            content_type=validate_content_type(content_type),
            length=content_length,
        )
        return self.object_url(grant)

    async def presign_post(
        self, key: str, *, expires_in: int, content_type: str, max_bytes: int
    ) -> PresignedPost:
        """A form POST to ``/storage/upload``; the signed fields fix key, type and size."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        grant = Grant(
            op=Op.POST,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            content_type=validate_content_type(content_type),
            length=max_bytes,
        )
        return PresignedPost(
            url=self.base_url + POST_ROUTE,
            fields={
                "key": key,
                "Content-Type": content_type,
                POST_EXPIRES_FIELD: str(grant.expires),
                POST_MAX_FIELD: str(max_bytes),
                POST_SIGNATURE_FIELD: self.signer.sign(grant),
            },
        )

    async def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int,
        content_length: int | None = None,
    ) -> str:
        """A signed URL to PUT one part of a multipart upload (of exactly
        ``content_length`` bytes when given)."""
        check_upload_id(upload_id)  # an id of another shape names no upload
        if content_length is not None and content_length < 1:
            raise ValueError("content_length must be positive")
        grant = Grant(
            op=Op.PART,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            length=content_length,
            upload_id=upload_id,
            part_number=validate_part_number(part_number),
        )
        return self.object_url(grant)

    def object_url(self, grant: Grant) -> str:
        """``{base_url}/storage/o/{key}?...`` carrying ``grant`` and its signature."""
        query: dict[str, str] = {"op": grant.op.value, "exp": str(grant.expires)}
        if grant.content_type is not None:
            query["ct"] = grant.content_type
        if grant.length is not None:
            query["len"] = str(grant.length)
        if grant.download_name is not None:
            query["dn"] = grant.download_name
        if grant.response_content_type is not None:
            query["rct"] = grant.response_content_type
        if grant.upload_id is not None:
            query["uid"] = grant.upload_id
        if grant.part_number is not None:
            query["pn"] = str(grant.part_number)
        query["sig"] = self.signer.sign(grant)
        path = quote(grant.key, safe="/")
        return f"{self.base_url}{OBJECT_ROUTE}{path}?{urlencode(query, quote_via=quote)}"
