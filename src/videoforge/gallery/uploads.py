"""Uploads straight to the object store: issue URLs, multipart, confirm.

The server makes the key (``originals/{user}/{random}/source``); the client's file
name is metadata only. Every URL issued is recorded as an upload session
(``gallery_uploads``) whose state moves ``issued -> confirmed | rejected | aborted |
swept`` by conditional updates only, so confirm and the sweeper can never both win.

What was declared is what is kept: every multipart part URL carries its exact length,
complete needs every planned part at its planned size, and confirm needs the stored
size to equal the declared one. A confirmed original is copied to its own key
(``.../original``) that no URL was ever issued for; see :func:`confirm_upload`.
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath

import structlog
from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gallery import deletions, publishing
from videoforge.gallery.lifecycle import publisher as lifecycle
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
from videoforge.gallery.usage.service import ensure_room
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from videoforge.infra.storage.base import (
    CompletedPart,
    InvalidUpload,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
)
from videoforge.infra.storage.keys import final_key, new_upload_key
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery.uploads")

MAX_PARTS = 10_000
MiB = 1024 * 1024
DEFAULT_VISIBILITY = VideoVisibility.PRIVATE
#: After a session's last URL expires, how long a write begun before may still land
#: (a slow form POST); the upload key is deleted again once this has passed too.
REPLAY_GRACE = timedelta(hours=1)
#: A confirm that copied its original and then failed to commit leaves the copy behind;
#: its delete is scheduled this long after the attempt (far longer than any confirm
#: takes), and dropped by the confirm that commits.
COPY_GUARD = timedelta(hours=6)

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
    upload = await _own_upload(session, principal, body.key)
    if upload.upload_id is None or not secrets.compare_digest(upload.upload_id, body.upload_id):
        raise _upload_not_found()
    if upload.state is UploadState.CONFIRMED:
        raise _already_completed()
    if upload.state is not UploadState.ISSUED:
        raise _upload_not_found()
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
        raise _upload_not_found()
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


@dataclass(frozen=True)
class Confirmed:
    video: GalleryVideo
    created: bool
    #: Deletion outbox rows to carry out after the commit (the upload key's bytes).
    pending: Sequence[int] = ()
    #: The upload key to close after the commit (see :func:`close_upload`).
    upload_key: str | None = None


@dataclass(frozen=True)
class Rejected:
    """The bytes were refused; after committing the state, carry out ``pending`` (their
    delete, recorded in the outbox) and raise ``error``."""

    error: AppError
    pending: Sequence[int] = ()


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
    session: AsyncSession, upload: GalleryUpload, error: AppError
) -> Confirmed | Rejected:
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(state=UploadState.REJECTED, updated_at=utcnow())
    )
    if result.rowcount != 1:
        return await _existing(session, upload.key)
    pending = await deletions.schedule(session, reason="upload_rejected", keys=[upload.key])
    log.info("upload_rejected", key=upload.key, code=error.code)
    return Rejected(error=error, pending=pending)


async def confirm_upload(
    sessions: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    principal: Principal,
    body: UploadConfirm,
) -> Confirmed | Rejected:
    """Check the uploaded object and create its video (status ``uploaded``).

    Missing object -> 404; larger than the limit -> deleted + 413; another size than
    declared -> deleted + 400 ``upload_size_mismatch``; not a video container ->
    deleted + 415. Confirming again returns the same video.

    The video's original is a copy at :func:`final_key`, made only of the bytes that
    were checked (the copy is conditional on their ETag, and sniffed again), and the
    upload key is deleted. Presigned URLs cannot be revoked on S3, so until it expires
    a replayed form POST still writes the upload key there — but nothing reads that key
    again, and it is deleted once more after the URLs expire. (Part URLs die with the
    completed multipart upload; the local store refuses the rest, see
    :func:`close_upload`.) This is safer than recording the ETag for the worker to
    check: that would leave the one copy of the original overwritable (lost to its
    owner, not only refused by the worker) and make every reader of originals verify
    it; a key that no URL names needs no reader to cooperate.

    Three transactions: the checks (and a rejection), the copy's clean-up guard
    (committed before the copy; SQLite allows one writer at a time), and the claim with
    the copy and the video.
    """
    # A bad publishing choice is refused before anything is touched.
    published = publishing.initial(body.publish, body.publish_at)
    async with session_scope(sessions) as session:
        checked = await _check_upload(session, storage, settings, principal, body)
    if not isinstance(checked, _Checked):
        return checked
    upload, info = checked.upload, checked.info

    original = final_key(upload.key)
    # If this confirm copies and then fails to commit, the copy is still deleted later;
    # the commit below drops the row.
    async with session_scope(sessions) as session:
        guard = await deletions.schedule(
            session,
            reason="upload_copy_unconfirmed",
            keys=[original],
            not_before=utcnow() + timedelta(seconds=settings.upload_url_ttl) + COPY_GUARD,
        )

    async with session_scope(sessions) as session:
        return await _claim_and_copy(
            session, storage, principal, body, upload, info, original, guard, published
        )


@dataclass(frozen=True)
class _Checked:
    upload: GalleryUpload
    info: ObjectInfo


async def _check_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    body: UploadConfirm,
) -> _Checked | Confirmed | Rejected:
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
            upload,
            PayloadTooLarge(
                f"The file is larger than {settings.upload_max_bytes} bytes.",
                code="upload_too_large",
            ),
        )
    if info.size != upload.size:
        return await _reject(
            session,
            upload,
            BadRequest(
                f"The uploaded file has {info.size} bytes, not the {upload.size} declared; "
                "start a new upload.",
                code="upload_size_mismatch",
            ),
        )
    head = await storage.get_bytes(upload.key, start=0, end=min(SNIFF_BYTES, info.size) - 1)
    if sniff_container(head) is None:
        return await _reject(
            session,
            upload,
            UnsupportedMediaType(
                "The file is not a video we can read.", code="unsupported_media_type"
            ),
        )
    return _Checked(upload=upload, info=info)


async def _claim_and_copy(
    session: AsyncSession,
    storage: Storage,
    principal: Principal,
    body: UploadConfirm,
    upload: GalleryUpload,
    info: ObjectInfo,
    original: str,
    guard: Sequence[int],
    published: publishing.Publishing,
) -> Confirmed:
    # Claim the session first: the row lock orders concurrent confirms, and the loser
    # finds it confirmed and returns the winner's video (without copying over it).
    claimed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(GalleryUpload)
        .where(GalleryUpload.key == upload.key, GalleryUpload.state == UploadState.ISSUED)
        .values(state=UploadState.CONFIRMED, updated_at=utcnow())
    )
    if claimed.rowcount != 1:
        await deletions.cancel(session, guard)
        return await _existing(session, upload.key)

    try:
        await storage.copy(upload.key, original, if_match=info.etag)
    except ObjectChanged:
        # Rolled back with the claim: the session stays issued and can be confirmed
        # again, checking the bytes that are there now.
        raise Conflict(
            "The upload changed while it was being confirmed; confirm it again.",
            code="upload_changed",
        ) from None
    except ObjectNotFound:
        raise NotFound("The uploaded file is gone.", code="upload_not_found") from None
    # The copy is exactly the version whose size was checked (same ETag), but the sniff
    # read the upload key separately: a swap and a swap back in between would slip a
    # non-video past it. Sniffing the copy checks the bytes that are kept.
    kept = await storage.get_bytes(original, start=0, end=min(SNIFF_BYTES, info.size) - 1)
    if sniff_container(kept) is None:
        raise Conflict(
            "The upload changed while it was being confirmed; confirm it again.",
            code="upload_changed",
        )

    video = GalleryVideo(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        owner_name=principal.public_name,
        title=body.title or _title_from(upload.filename),
        description=body.description or "",
        visibility=body.visibility or DEFAULT_VISIBILITY,
        status=VideoStatus.UPLOADED,
        s3_key=original,
        original_filename=upload.filename,
        content_type=upload.content_type,
        file_size=info.size,
        # The original is all it holds until processing (then gallery.usage measures).
        storage_bytes=info.size,
        renditions=[],
        draft=published.draft,
        publish_when_ready=published.publish_when_ready,
        publish_at=published.publish_at,
        publish_pending=publishing.is_pending(published, utcnow()),
    )
    session.add(video)
    await session.flush()
    await lifecycle.video_created(session, video)
    await session.execute(
        update(GalleryUpload).where(GalleryUpload.key == upload.key).values(video_id=video.id)
    )
    await deletions.cancel(session, guard)
    pending = await deletions.schedule(session, reason="upload_confirmed", keys=[upload.key])
    # Whatever a URL writes before it expires (plus a slow request's grace) goes too.
    await deletions.schedule(
        session,
        reason="upload_replay",
        keys=[upload.key],
        not_before=upload.expires_at + REPLAY_GRACE,
    )
    await session.flush()
    return Confirmed(video=video, created=True, pending=pending, upload_key=upload.key)


async def close_upload(storage: Storage, outcome: Confirmed | Rejected) -> None:
    """After a confirm's commit, on the local store: refuse the upload's URLs outright
    (409 ``upload_closed``). S3 cannot revoke a presigned URL; there the original's own
    key is the protection, as it is here too if sealing fails (hence only logged)."""
    if not isinstance(outcome, Confirmed) or outcome.upload_key is None:
        return
    if isinstance(storage, LocalStorage):
        try:
            await storage.seal(outcome.upload_key)
        except (StorageError, OSError):
            log.warning("upload_seal_failed", key=outcome.upload_key, exc_info=True)
