"""Uploads straight to the object store: issue URLs, multipart, confirm.

The server makes the key (``originals/{user}/{random}/source``); the client's file
name is metadata only. Every URL issued is recorded as an upload session
(``gallery_uploads``) whose state moves ``issued -> confirmed | rejected | aborted |
swept`` by conditional updates only, so confirm and the sweeper can never both win.

What was declared is what is kept: every multipart part URL carries its exact length,
complete needs every planned part at its planned size, and confirm needs the stored
size to equal the declared one. A confirmed original is copied to its own key
(``.../original``) that no URL was ever issued for; see :mod:`confirm`.
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import deletions
from videoforge.gallery.models import GalleryUpload, UploadState
from videoforge.gallery.schemas import (
    MultipartAbort,
    MultipartComplete,
    MultipartParts,
    MultipartPartsRequest,
    MultipartUpload,
    PartUrl,
    SingleUpload,
    UploadRequest,
    UploadTicket,
)
from videoforge.gallery.usage.service import ensure_room
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import utcnow
from videoforge.infra.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from videoforge.infra.storage.base import (
    CompletedPart,
    InvalidUpload,
    ObjectNotFound,
    Storage,
)
from videoforge.infra.storage.keys import new_upload_key
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery.uploads")

MAX_PARTS = 10_000
MiB = 1024 * 1024

_CONTENT_TYPE = re.compile(r"^(video/[a-z0-9][a-z0-9.+-]{0,100}|application/octet-stream)$")
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_filename(name: str) -> str:
    """The file name as metadata: last path component, no control/bidi characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in _REFUSED).strip()
    if base in {"", ".", ".."}:
        base = "video"
    return base[:255]


def plan_parts(size: int, preferred: int) -> tuple[int, int]:
    """(part size, part count): the preferred size unless that needs over 10,000 parts."""
    part_size = preferred
    if math.ceil(size / part_size) > MAX_PARTS:
        part_size = math.ceil(math.ceil(size / MAX_PARTS) / MiB) * MiB
    return part_size, math.ceil(size / part_size)


def part_length(size: int, part_size: int, part_number: int) -> int:
    """The planned length of one part: ``part_size``, the remainder for the last one."""
    return min(part_size, size - part_size * (part_number - 1))


async def issue_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    request: UploadRequest,
) -> UploadTicket:
    """A presigned upload for a new original: one size-limited POST for small files,
    presigned multipart parts for large ones."""
    content_type = request.content_type.strip().lower()
    if not _CONTENT_TYPE.match(content_type):
        raise UnsupportedMediaType(
            "Only video files can be uploaded.", code="unsupported_media_type"
        )
    if request.size > settings.upload_max_bytes:
        raise PayloadTooLarge(
            f"Files can be at most {settings.upload_max_bytes} bytes.", code="upload_too_large"
        )
    # Before any URL exists: an upload that would not fit is refused up front.
    await ensure_room(session, settings, principal.user_id, request.size)

    key = new_upload_key(principal.user_id)
    ttl = settings.upload_url_ttl
    expires_at = utcnow() + timedelta(seconds=ttl)
    single: SingleUpload | None = None
    multipart: MultipartUpload | None = None
    upload_id: str | None = None
    if request.size <= settings.upload_multipart_threshold:
        # The policy allows at most the declared size: a client cannot declare 1 KB and
        # send 5 GB.
        post = await storage.presign_post(
            key, expires_in=ttl, content_type=content_type, max_bytes=request.size
        )
        single = SingleUpload(url=post.url, fields=post.fields, max_bytes=request.size)
    else:
        part_size, count = plan_parts(request.size, settings.upload_part_size)
        upload_id = await storage.create_multipart(key, content_type=content_type)
        parts = [
            PartUrl(
                part_number=n,
                url=await storage.presign_part(
                    key,
                    upload_id,
                    n,
                    expires_in=ttl,
                    content_length=part_length(request.size, part_size, n),
                ),
            )
            for n in range(1, count + 1)
        ]
        multipart = MultipartUpload(upload_id=upload_id, part_size=part_size, parts=parts)

    session.add(
        GalleryUpload(
            key=key,
            user_id=principal.user_id,
            filename=clean_filename(request.filename),
            content_type=content_type,
            size=request.size,
            upload_id=upload_id,
            state=UploadState.ISSUED,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return UploadTicket(key=key, expires_at=expires_at, single=single, multipart=multipart)


def upload_not_found() -> NotFound:
    return NotFound("No such upload.", code="upload_not_found")


async def own_upload(session: AsyncSession, principal: Principal, key: str) -> GalleryUpload:
    upload = await session.get(GalleryUpload, key, populate_existing=True)
    # Someone else's key is indistinguishable from a missing one.
    if upload is None or upload.user_id != principal.user_id:
        raise upload_not_found()
    return upload


async def _own_multipart(
    session: AsyncSession, principal: Principal, key: str, upload_id: str
) -> GalleryUpload:
    upload = await own_upload(session, principal, key)
    if upload.upload_id is None or not secrets.compare_digest(upload.upload_id, upload_id):
        raise upload_not_found()
    if upload.state is not UploadState.ISSUED:
        raise upload_not_found()
    return upload


def _already_completed() -> Conflict:
    return Conflict(
        "This multipart upload was already completed; confirm it.",
        code="upload_already_completed",
    )


def _numbers(numbers: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


async def complete_multipart(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    body: MultipartComplete,
) -> None:
    """Assemble the uploaded parts; the client then confirms as for a single upload.

    Every planned part must be listed, once, and hold exactly its planned length;
    completing again is a 409 ``upload_already_completed``.
    """
    upload = await own_upload(session, principal, body.key)
    if upload.upload_id is None or not secrets.compare_digest(upload.upload_id, body.upload_id):
        raise upload_not_found()
    if upload.state is UploadState.CONFIRMED:
        raise _already_completed()
    if upload.state is not UploadState.ISSUED:
        raise upload_not_found()
    # Planned with the current part size: UPLOAD_PART_SIZE changed while an upload was in
    # flight makes that upload fail here (clearly) rather than assemble the wrong parts.
    part_size, count = plan_parts(upload.size, settings.upload_part_size)
    listed = [p.part_number for p in body.parts]
    if len(set(listed)) != len(listed):
        raise BadRequest("A part number is listed twice.", code="invalid_part_number")
    if max(listed) > count:
        raise BadRequest(f"Part numbers must be 1..{count}.", code="invalid_part_number")
    missing = sorted(set(range(1, count + 1)) - set(listed))
    if missing:
        raise BadRequest(
            f"Every planned part (1..{count}) is needed; missing: {_numbers(missing)}.",
            code="upload_incomplete",
        )
    parts = sorted(
        (
            CompletedPart(
                part_number=p.part_number,
                etag=p.etag,
                size=part_length(upload.size, part_size, p.part_number),
            )
            for p in body.parts
        ),
        key=lambda p: p.part_number,
    )
    try:
        await storage.complete_multipart(upload.key, body.upload_id, parts)
    except InvalidUpload as exc:
        raise BadRequest(
            f"The parts do not match what was planned and uploaded ({exc}).",
            code="invalid_upload",
        ) from None
    except ObjectNotFound:
        # The store no longer knows the upload: completed before (S3 may even accept a
        # second complete, so the object is what tells), or aborted.
        if await storage.head(upload.key) is not None:
            raise _already_completed() from None
        raise NotFound(
            "This multipart upload no longer exists; start a new upload.",
            code="upload_not_found",
        ) from None


async def abort_multipart(
    session: AsyncSession, storage: Storage, principal: Principal, body: MultipartAbort
) -> list[int]:
    """Give up a multipart upload: its parts are discarded and the session closed.

    Returns deletion outbox rows to carry out after the commit: an upload aborted after
    it was completed has an object, which no sweep would look at again (the sweep only
    takes sessions still ``issued``).
    """
    upload = await _own_multipart(session, principal, body.key, body.upload_id)
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(state=UploadState.ABORTED, updated_at=utcnow())
    )
    if result.rowcount != 1:
        return []
    await storage.abort_multipart(upload.key, body.upload_id)
    return await deletions.schedule(session, reason="upload_aborted", keys=[upload.key])


async def resign_parts(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    body: MultipartPartsRequest,
) -> MultipartParts:
    """Fresh part URLs to resume an upload; the session's expiry moves forward with them."""
    upload = await _own_multipart(session, principal, body.key, body.upload_id)
    _, count = plan_parts(upload.size, settings.upload_part_size)
    numbers = sorted(set(body.part_numbers))
    if numbers[0] < 1 or numbers[-1] > count:
        raise BadRequest(f"Part numbers must be 1..{count}.", code="invalid_part_number")
    ttl = settings.upload_url_ttl
    expires_at = utcnow() + timedelta(seconds=ttl)
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(expires_at=expires_at, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise upload_not_found()
    assert upload.upload_id is not None
    part_size, _ = plan_parts(upload.size, settings.upload_part_size)
    parts = [
        PartUrl(
            part_number=n,
            url=await storage.presign_part(
                upload.key,
                upload.upload_id,
                n,
                expires_in=ttl,
                content_length=part_length(upload.size, part_size, n),
            ),
        )
        for n in numbers
    ]
    await session.flush()
    return MultipartParts(parts=parts, expires_at=expires_at)
