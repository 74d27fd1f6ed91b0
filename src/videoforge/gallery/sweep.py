"""The gallery's clean-up: uploads that were never confirmed, stale multipart uploads.

A session still ``issued`` after its URL's expiry plus a grace period is first moved to
``swept`` by a conditional update, committed with the delete of its bytes recorded in
the deletion outbox (:mod:`.deletions`), and only then are its bytes deleted — so the
sweep can never race a confirm: whichever conditional update wins decides, and an
object that belongs to a video is never touched. A delete that fails is retried by
:func:`.deletions.sweep_deletions`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import CursorResult, select, update

from videoforge.gallery import deletions
from videoforge.gallery.models import GalleryUpload, UploadState
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.base import StorageError
from videoforge.infra.storage.keys import ORIGINALS_ROOT

log = structlog.get_logger("videoforge.gallery.sweep")

GRACE = timedelta(hours=1)
BATCH = 200


async def _sweep_session(infra: Infra, key: str, now: datetime) -> bool:
    async with session_scope(infra.sessions) as session:
        result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
            update(GalleryUpload)
            .where(
                GalleryUpload.key == key,
                GalleryUpload.state == UploadState.ISSUED,
                GalleryUpload.expires_at < now - GRACE,
            )
            .values(state=UploadState.SWEPT, updated_at=utcnow())
            .returning(GalleryUpload.upload_id)
        )
        row = result.first()
        if row is None:
            return False  # confirmed (or swept) meanwhile: not ours to delete
        pending = await deletions.schedule(session, reason="upload_swept", keys=[key])
    upload_id = row[0]
    if upload_id:
        try:
            await infra.storage.abort_multipart(key, upload_id)
        except StorageError:
            # Retried by _abort_stale_multipart on every sweep: the session is not live.
            log.exception("sweep_abort_failed", key=key)
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    return True


async def _abort_stale_multipart(infra: Infra, now: datetime) -> int:
    """Multipart uploads of originals whose session is no longer live."""
    cutoff = now - timedelta(seconds=infra.settings.upload_url_ttl) - GRACE
    aborted = 0
    try:
        uploads = await infra.storage.list_multipart_uploads(ORIGINALS_ROOT)
    except StorageError:
        log.exception("sweep_list_multipart_failed")  # storage is down: next sweep
        return 0
    for key, upload_id, initiated in uploads:
        if initiated > cutoff:
            continue
        async with infra.sessions() as session:
            upload = await session.get(GalleryUpload, key)
        live = (
            upload is not None
            and upload.state is UploadState.ISSUED
            and upload.expires_at >= now - GRACE
        )
        if live:
            continue  # resumed recently (part URLs were re-signed)
        try:
            await infra.storage.abort_multipart(key, upload_id)
            aborted += 1
        except StorageError:
            log.exception("sweep_abort_failed", key=key)
    return aborted


async def sweep_uploads(infra: Infra, *, now: datetime | None = None) -> int:
    """Delete what unconfirmed, expired upload sessions left; returns sessions swept."""
    now = now or utcnow()
    swept = 0
    while True:
        async with infra.sessions() as session:
            keys = list(
                (
                    await session.execute(
                        select(GalleryUpload.key)
                        .where(
                            GalleryUpload.state == UploadState.ISSUED,
                            GalleryUpload.expires_at < now - GRACE,
                        )
                        .order_by(GalleryUpload.expires_at)
                        .limit(BATCH)
                    )
                ).scalars()
            )
        if not keys:
            break
        for key in keys:
            if await _sweep_session(infra, key, now):
                swept += 1
        if len(keys) < BATCH:
            break
    aborted = await _abort_stale_multipart(infra, now)
    log.info("uploads_swept", sessions=swept, multipart_aborted=aborted)
    return swept
