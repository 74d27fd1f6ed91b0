"""Uploads straight to the object store: issue URLs, multipart, confirm.

The server makes the key (``originals/{user}/{random}/source``); the client's file
name is metadata only. Every URL issued is recorded as an upload session
(``gallery_uploads``) whose state moves ``issued -> confirmed | rejected | aborted |
swept`` by conditional updates only, so confirm and the sweeper can never both win.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath

import structlog
from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.models import GalleryUpload, GalleryVideo, UploadState, VideoStatus
from videoforge.gallery.models import Visibility as VideoVisibility
from videoforge.gallery.schemas import (
    MultipartAbort,
    MultipartComplete,
    MultipartParts,
    MultipartPartsRequest,
    MultipartUpload,
    PartUrl,
    SingleUpload,
    UploadConfirm,
    UploadRequest,
    UploadTicket,
)
from videoforge.gallery.sniff import SNIFF_BYTES, sniff_container
from videoforge.infra.auth import Principal
from videoforge.infra.cache.base import Cache
from videoforge.infra.db import utcnow
from videoforge.infra.errors import (
    AppError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from videoforge.infra.storage.base import CompletedPart, InvalidUpload, Storage
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery.uploads")

MAX_PARTS = 10_000
MiB = 1024 * 1024
#: Upload URLs per user per hour (each one reserves storage until it is swept).
UPLOAD_URL_LIMIT = 60
UPLOAD_URL_WINDOW = 3600
DEFAULT_VISIBILITY = VideoVisibility.PRIVATE

_CONTENT_TYPE = re.compile(r"^(video/[a-z0-9][a-z0-9.+-]{0,100}|application/octet-stream)$")
_SAFE_USER = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_filename(name: str) -> str:
    """The file name as metadata: last path component, no control/bidi characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in _REFUSED).strip()
    if base in {"", ".", ".."}:
        base = "video"
    return base[:255]


def user_segment(user_id: str) -> str:
    """The user's part of a key: the id itself when it is key-safe, else a digest."""
    if _SAFE_USER.match(user_id):
        return user_id
    return "u" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


def new_original_key(user_id: str) -> str:
    return f"originals/{user_segment(user_id)}/{secrets.token_urlsafe(18)}/source"


def plan_parts(size: int, preferred: int) -> tuple[int, int]:
    """(part size, part count): the preferred size unless that needs over 10,000 parts."""
    part_size = preferred
    if math.ceil(size / part_size) > MAX_PARTS:
        part_size = math.ceil(math.ceil(size / MAX_PARTS) / MiB) * MiB
    return part_size, math.ceil(size / part_size)


async def _rate_limit(cache: Cache, user_id: str) -> None:
    result = await cache.hit(
        f"gallery:upload-url:{user_id}", limit=UPLOAD_URL_LIMIT, window=UPLOAD_URL_WINDOW
    )
    if not result.allowed:
        raise TooManyRequests(
            "Too many uploads started; try again later.", retry_after=result.retry_after
        )


async def issue_upload(
    session: AsyncSession,
    storage: Storage,
    cache: Cache,
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
    await _rate_limit(cache, principal.user_id)

    key = new_original_key(principal.user_id)
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
                url=await storage.presign_part(key, upload_id, n, expires_in=ttl),
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


def _upload_not_found() -> NotFound:
    return NotFound("No such upload.", code="upload_not_found")


async def _own_upload(session: AsyncSession, principal: Principal, key: str) -> GalleryUpload:
    upload = await session.get(GalleryUpload, key, populate_existing=True)
    # Someone else's key is indistinguishable from a missing one.
    if upload is None or upload.user_id != principal.user_id:
        raise _upload_not_found()
    return upload


async def _own_multipart(
    session: AsyncSession, principal: Principal, key: str, upload_id: str
) -> GalleryUpload:
    upload = await _own_upload(session, principal, key)
    if upload.upload_id is None or not secrets.compare_digest(upload.upload_id, upload_id):
        raise _upload_not_found()
    if upload.state is not UploadState.ISSUED:
        raise _upload_not_found()
    return upload


async def complete_multipart(
    session: AsyncSession, storage: Storage, principal: Principal, body: MultipartComplete
) -> None:
    """Assemble the uploaded parts; the client then confirms as for a single upload."""
    upload = await _own_multipart(session, principal, body.key, body.upload_id)
    parts = sorted(
        (CompletedPart(part_number=p.part_number, etag=p.etag) for p in body.parts),
        key=lambda p: p.part_number,
    )
    try:
        await storage.complete_multipart(upload.key, body.upload_id, parts)
    except InvalidUpload:
        raise BadRequest(
            "The parts do not match what was uploaded.", code="invalid_upload"
        ) from None


async def abort_multipart(
    session: AsyncSession, storage: Storage, principal: Principal, body: MultipartAbort
) -> None:
    """Give up a multipart upload: its parts are discarded and the session closed."""
    upload = await _own_multipart(session, principal, body.key, body.upload_id)
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(state=UploadState.ABORTED, updated_at=utcnow())
    )
    if result.rowcount == 1:
        await storage.abort_multipart(upload.key, body.upload_id)
    await session.flush()


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
        raise _upload_not_found()
    assert upload.upload_id is not None
    parts = [
        PartUrl(
            part_number=n,
            url=await storage.presign_part(upload.key, upload.upload_id, n, expires_in=ttl),
        )
        for n in numbers
    ]
    await session.flush()
    return MultipartParts(parts=parts, expires_at=expires_at)


@dataclass(frozen=True)
class Confirmed:
    video: GalleryVideo
    created: bool


@dataclass(frozen=True)
class Rejected:
    """The bytes were refused and deleted; raise ``error`` after committing the state."""

    error: AppError


def _title_from(filename: str) -> str:
    stem = PurePosixPath(filename).stem.strip() or "Untitled"
    return stem[:200]


async def _existing(session: AsyncSession, key: str) -> Confirmed:
    upload = await session.get(GalleryUpload, key, populate_existing=True)
    if upload is None or upload.state is not UploadState.CONFIRMED or upload.video_id is None:
        raise _upload_not_found()
    video = await session.get(GalleryVideo, upload.video_id, populate_existing=True)
    if video is None:
        raise _upload_not_found()
    return Confirmed(video=video, created=False)


async def _reject(
    session: AsyncSession, storage: Storage, upload: GalleryUpload, error: AppError
) -> Confirmed | Rejected:
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(state=UploadState.REJECTED, updated_at=utcnow())
    )
    if result.rowcount != 1:
        return await _existing(session, upload.key)
    await storage.delete(upload.key)
    await session.flush()
    log.info("upload_rejected", key=upload.key, code=error.code)
    return Rejected(error=error)


async def confirm_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    body: UploadConfirm,
) -> Confirmed | Rejected:
    """Check the uploaded object and create its video (status ``uploaded``).

    Missing object -> 404; larger than the limit -> deleted + 413; not a video
    container -> deleted + 415. Confirming again returns the same video.
    """
    upload = await _own_upload(session, principal, body.key)
    if upload.state is UploadState.CONFIRMED:
        return await _existing(session, upload.key)
    if upload.state is not UploadState.ISSUED:
        raise _upload_not_found()

    info = await storage.head(upload.key)
    if info is None:
        raise NotFound("Nothing has been uploaded to this key yet.", code="upload_not_found")
    if info.size > settings.upload_max_bytes:
        return await _reject(
            session,
            storage,
            upload,
            PayloadTooLarge(
                f"The file is larger than {settings.upload_max_bytes} bytes.",
                code="upload_too_large",
            ),
        )
    head = (
        await storage.get_bytes(upload.key, start=0, end=min(SNIFF_BYTES, info.size) - 1)
        if info.size > 0
        else b""
    )
    if sniff_container(head) is None:
        return await _reject(
            session,
            storage,
            upload,
            UnsupportedMediaType(
                "The file is not a video we can read.", code="unsupported_media_type"
            ),
        )

    # Claim the session first: the row lock orders concurrent confirms, and the loser
    # finds it confirmed and returns the winner's video.
    claimed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(state=UploadState.CONFIRMED, updated_at=utcnow())
    )
    if claimed.rowcount != 1:
        return await _existing(session, upload.key)

    video = GalleryVideo(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        owner_name=principal.public_name,
        title=body.title or _title_from(upload.filename),
        description=body.description or "",
        visibility=body.visibility or DEFAULT_VISIBILITY,
        status=VideoStatus.UPLOADED,
        s3_key=upload.key,
        original_filename=upload.filename,
        content_type=upload.content_type,
        file_size=info.size,
        renditions=[],
    )
    session.add(video)
    await session.flush()
    await session.execute(
        update(GalleryUpload).where(GalleryUpload.key == upload.key).values(video_id=video.id)
    )
    await session.flush()
    return Confirmed(video=video, created=True)
