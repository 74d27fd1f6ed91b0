"""Confirm: the uploaded object is checked (size as declared, a video container, within
the limits), copied to its final key by its checked ETag, and becomes a video; or it is
refused and removed through the deletion outbox. See :mod:`uploads` for the URLs."""

from __future__ import annotations

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
    UploadConfirm,
)
from videoforge.gallery.sniff import SNIFF_BYTES, sniff_container
from videoforge.gallery.uploads import own_upload, upload_not_found
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
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
)
from videoforge.infra.storage.keys import final_key
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery.uploads")

DEFAULT_VISIBILITY = VideoVisibility.PRIVATE
#: After a session's last URL expires, how long a write begun before may still land
#: (a slow form POST); the upload key is deleted again once this has passed too.
REPLAY_GRACE = timedelta(hours=1)
#: A confirm that copied its original and then failed to commit leaves the copy behind;
#: its delete is scheduled this long after the attempt (far longer than any confirm
#: takes), and dropped by the confirm that commits.
COPY_GUARD = timedelta(hours=6)


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
        raise upload_not_found()
    video = await session.get(GalleryVideo, upload.video_id, populate_existing=True)
    if video is None:
        raise upload_not_found()
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
    upload = await own_upload(session, principal, body.key)
    if upload.state is UploadState.CONFIRMED:
        return await _existing(session, upload.key)
    if upload.state is not UploadState.ISSUED:
        raise upload_not_found()

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
