"""The gallery's rules for one video: read, create (for imports), edit, delete.

Services only ``flush()``; the request's :func:`videoforge.infra.db.session_scope`
commits. Storage clean-up after a delete runs once the deletion is committed.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import deletions, publishing
from videoforge.gallery.access import (
    ensure_owner,
    ensure_owner_or_admin,
    ensure_visible,
    is_owner_or_admin,
)
from videoforge.gallery.lifecycle import publisher as lifecycle
from videoforge.gallery.models import GalleryVideo, GalleryVideoJob, VideoStatus
from videoforge.gallery.publishing import PublishMode
from videoforge.gallery.schemas import (
    RenditionRead,
    ThumbnailCandidateRead,
    ThumbnailChoice,
    VideoCreate,
    VideoRead,
    VideoUpdate,
)
from videoforge.gallery.search import VideoRow
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import utcnow
from videoforge.infra.errors import BadRequest, Conflict, PreconditionFailed, UnprocessableEntity
from videoforge.infra.storage.base import Storage, StorageError
from videoforge.infra.storage.keys import video_prefixes

log = structlog.get_logger("videoforge.gallery")

#: Thumbnail and preview URLs in listings live this long (pages are re-fetched often).
LISTING_URL_TTL = 6 * 3600


async def load_video(
    session: AsyncSession, video_id: uuid.UUID, *, keep: bool = False
) -> GalleryVideo | None:
    """The video, fresh from the database. ``keep`` holds it until the transaction ends
    (``FOR KEY SHARE``; SQLite's writers take turns anyway), for writes of rows that
    hang off it (comments, ratings, reports): a concurrent delete of the video then
    waits for them, or they find it gone (404), instead of failing on the foreign key
    or deadlocking with the delete's cascade."""
    if not keep:
        return await session.get(GalleryVideo, video_id, populate_existing=True)
    stmt = (
        select(GalleryVideo)
        .where(GalleryVideo.id == video_id)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_visible(
    session: AsyncSession, video_id: uuid.UUID, principal: Principal | None, *, keep: bool = False
) -> GalleryVideo:
    """The video if the caller may see it; 404 otherwise (``keep``: see load_video)."""
    return ensure_visible(await load_video(session, video_id, keep=keep), principal)


def _publishing_changes(video: GalleryVideo, changes: dict[str, Any]) -> dict[str, Any]:
    """Replace an edit's ``publish``/``publish_at`` by the columns they set."""
    if "publish" not in changes and "publish_at" not in changes:
        return changes
    mode = changes.pop("publish", None)
    publish_at = changes.pop("publish_at", None)
    if mode is None:
        if publish_at is None:
            raise UnprocessableEntity("publish cannot be null.", code="validation_error")
        mode = PublishMode.SCHEDULE
    now = utcnow()
    decided = publishing.decide(
        mode, publish_at, now=now, status=video.status, current=publishing.columns_of(video)
    )
    columns = {
        "draft": decided.draft,
        "publish_when_ready": decided.publish_when_ready,
        "publish_at": decided.publish_at,
    }
    if publishing.is_pending(decided, now):
        # Held back: its publication, when it comes, is announced (video.published).
        columns["publish_pending"] = True
    return {**changes, **columns}


async def create_import(
    session: AsyncSession, principal: Principal, data: VideoCreate
) -> GalleryVideo:
    """A video owned by the caller, to be filled by an import job (no original yet)."""
    published = publishing.initial(data.publish, data.publish_at)
    video = GalleryVideo(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        owner_name=principal.public_name,
        title=data.title or "Untitled",
        description=data.description,
        visibility=data.visibility,
        status=VideoStatus.UPLOADED,
        source_url=str(data.source_url),
        renditions=[],
        draft=published.draft,
        publish_when_ready=published.publish_when_ready,
        publish_at=published.publish_at,
        publish_pending=publishing.is_pending(published, utcnow()),
    )
    session.add(video)
    await session.flush()
    await lifecycle.video_created(session, video)
    return video


#: Versions are 64-bit signed integers in both databases.
MAX_VERSION = 2**63 - 1


def parse_if_match(header: str | None) -> int | None:
    """``If-Match: "3"`` (or ``W/"3"``) -> 3. ``*`` means "any version"."""
    if header is None:
        return None
    value = header.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not value or not value.isascii() or not value.isdigit():
        raise BadRequest("If-Match must be the video's ETag.", code="invalid_if_match")
    version = int(value)
    if version > MAX_VERSION:
        raise UnprocessableEntity(
            "If-Match names a version no video can have.", code="invalid_if_match"
        )
    return version


async def update_video(
    session: AsyncSession,
    video_id: uuid.UUID,
    principal: Principal | None,
    data: VideoUpdate,
    *,
    if_match: str | None = None,
) -> GalleryVideo:
    """Apply the fields that were sent; a stale version is an ``edit_conflict``.

    The write is one conditional UPDATE (``WHERE version = :expected``), so two editors
    who read the same version cannot both win.
    """
    video = ensure_owner(await load_video(session, video_id), principal)
    header_version = parse_if_match(if_match)
    expected = header_version if header_version is not None else data.version
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for name in ("title", "visibility", "comment_policy"):
        if name in changes and changes[name] is None:
            raise UnprocessableEntity(f"{name} cannot be null.", code="validation_error")
    if changes.get("title") == "":
        raise UnprocessableEntity("title cannot be empty.", code="validation_error")
    if "description" in changes and changes["description"] is None:
        changes["description"] = ""
    changes = _publishing_changes(video, changes)

    stmt = (
        update(GalleryVideo)
        .where(GalleryVideo.id == video.id)
        .values(**changes, version=GalleryVideo.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if expected is not None:
        stmt = stmt.where(GalleryVideo.version == expected)
    result: CursorResult[tuple[()]] = await session.execute(stmt)  # type: ignore[assignment]
    if result.rowcount == 0:
        message = "The video was changed by someone else; reload it and try again."
        if header_version is not None:
            raise PreconditionFailed(message, code="edit_conflict")
        raise Conflict(message, code="edit_conflict")
    await session.flush()
    refreshed = await load_video(session, video.id)
    assert refreshed is not None
    return refreshed


async def delete_video(
    session: AsyncSession, video_id: uuid.UUID, principal: Principal | None
) -> list[int]:
    """Delete the row (owner or admin) and record, in the same transaction, the deletes
    of its original and of the outputs of every job seen for it; returns their ids
    (:func:`videoforge.gallery.deletions.carry_out` them after the commit)."""
    video = ensure_owner_or_admin(await load_video(session, video_id), principal)
    jobs = set(
        (
            await session.execute(
                select(GalleryVideoJob.job_id).where(GalleryVideoJob.video_id == video.id)
            )
        ).scalars()
    )
    if video.job_id is not None:
        jobs.add(video.job_id)
    await session.execute(delete(GalleryVideo).where(GalleryVideo.id == video.id))
    await lifecycle.video_deleted(session, video)
    return await deletions.schedule(
        session,
        reason="video_deleted",
        keys=[video.s3_key] if video.s3_key else [],
        # The owner's uploaded captions (their rows go with the video's, by cascade)
        # and thumbnail images.
        prefixes=video_prefixes(video.id, jobs),
    )


#: Stills' URLs in listings expire on multiples of this: within a window every caller
#: gets the same URL for a thumbnail (so browsers and CDNs can cache it), signed once.
STILL_URL_WINDOW = 600
_STILL_URLS_MAX = 20_000
#: Per store (a test process builds many; an id() could be reused by the next one).
_still_urls: weakref.WeakKeyDictionary[Storage, dict[tuple[str, int], str]] = (
    weakref.WeakKeyDictionary()
)


def _expiry(ttl: int, now: float) -> int:
    """The end of the window a still's URL signed at ``now`` for ``ttl`` expires at."""
    return int(math.ceil((now + ttl) / STILL_URL_WINDOW) * STILL_URL_WINDOW)


def still_urls_change(ttl: int = LISTING_URL_TTL) -> float:
    """When the stills' URLs signed now for ``ttl`` give way to the next window's (wall
    time): an answer holding them is what a fresh one would say until then."""
    now = time.time()
    return float(_expiry(ttl, now) - ttl)


def _signed_still(storage: Storage, key: str, ttl: int) -> str | None:
    """The still's URL of this window if it is signed already."""
    return _still_urls.get(storage, {}).get((key, _expiry(ttl, time.time())))


async def _presign(storage: Storage, key: str | None, ttl: int) -> str | None:
    """A URL for a still valid at least ``ttl`` (at most one window more), the same one
    for every caller within a window."""
    if not key:
        return None
    now = time.time()
    expires_at = _expiry(ttl, now)
    signed = _still_urls.setdefault(storage, {})
    cached = signed.get((key, expires_at))
    if cached is not None:
        return cached
    try:
        url = await storage.presign_get(key, expires_in=expires_at - int(now))
    except StorageError:
        log.warning("presign_failed", key=key)
        return None
    if len(signed) >= _STILL_URLS_MAX:
        # Entries of past windows are worthless: drop the oldest half (insertion order).
        for stale in list(signed)[: _STILL_URLS_MAX // 2]:
            del signed[stale]
    signed[(key, expires_at)] = url
    return url


async def to_read(
    video: GalleryVideo | VideoRow,
    principal: Principal | None,
    storage: Storage,
    *,
    url_ttl: int = LISTING_URL_TTL,
    my_rating: str | None = None,
) -> VideoRead:
    """The wire form; the original's key and file name only for the owner and admins.
    ``my_rating`` is the caller's own rating (gallery.ratings), never anyone else's."""
    candidates = _candidate_keys(video, principal)
    return read_of(
        video,
        principal,
        thumbnail_url=await _presign(storage, video.thumbnail_key, url_ttl),
        preview_url=await _presign(storage, video.preview_key, url_ttl),
        signed_candidates={key: await _presign(storage, key, url_ttl) for key in candidates},
        my_rating=my_rating,
    )


def _candidate_keys(video: GalleryVideo | VideoRow, principal: Principal | None) -> list[str]:
    """The thumbnail candidates' keys the caller may see (owner and admins only)."""
    if not is_owner_or_admin(cast(GalleryVideo, video), principal):
        return []
    return list(video.thumbnail_candidates or [])


async def page_of(
    videos: Sequence[GalleryVideo | VideoRow],
    principal: Principal | None,
    storage: Storage,
    *,
    ratings: Mapping[uuid.UUID, str],
) -> list[VideoRead]:
    """:func:`to_read` of a listing's page: the stills not signed yet in this window are
    signed concurrently (a thread hop each on S3), and the items are then built without
    a task or a coroutine per item."""
    keys = {key for v in videos for key in (v.thumbnail_key, v.preview_key) if key}
    keys |= {key for v in videos for key in _candidate_keys(v, principal)}
    signed = {key: _signed_still(storage, key, LISTING_URL_TTL) for key in keys}
    missing = [key for key, url in signed.items() if url is None]
    if missing:
        urls = await asyncio.gather(*(_presign(storage, key, LISTING_URL_TTL) for key in missing))
        signed.update(zip(missing, urls, strict=True))
    return [
        read_of(
            v,
            principal,
            thumbnail_url=signed.get(v.thumbnail_key or ""),
            preview_url=signed.get(v.preview_key or ""),
            signed_candidates=signed,
            my_rating=ratings.get(v.id),
        )
        for v in videos
    ]


def read_of(
    video: GalleryVideo | VideoRow,
    principal: Principal | None,
    *,
    thumbnail_url: str | None,
    preview_url: str | None,
    signed_candidates: Mapping[str, str | None] | None = None,
    my_rating: str | None = None,
) -> VideoRead:
    """:func:`to_read` with the stills' URLs already signed (the thumbnail candidates'
    by key, shown to the owner and admins only)."""
    signed_candidates = signed_candidates or {}
    privileged = is_owner_or_admin(cast(GalleryVideo, video), principal)
    candidates = []
    if privileged:
        for number, key in enumerate(video.thumbnail_candidates or [], start=1):
            url = signed_candidates.get(key)
            if url is not None:
                candidates.append(ThumbnailCandidateRead(number=number, url=url))
    return VideoRead(
        id=video.id,
        user_id=video.user_id,
        owner_name=video.owner_name,
        title=video.title,
        description=video.description,
        visibility=video.visibility,
        status=video.status,
        progress=video.progress,
        failure_reason=video.failure_reason,
        s3_key=video.s3_key if privileged else None,
        original_filename=video.original_filename if privileged else None,
        source_url=video.source_url if privileged else None,
        duration=video.duration,
        resolution=video.resolution,
        width=video.width,
        height=video.height,
        video_codec=video.video_codec,
        audio_codec=video.audio_codec,
        file_size=video.file_size,
        storage_bytes=video.storage_bytes if privileged else None,
        thumbnail_url=thumbnail_url,
        thumbnail_choice=thumbnail_choice(cast(GalleryVideo, video)),
        thumbnail_candidate=video.thumbnail_pick if video.custom_thumbnail_key is None else None,
        thumbnail_candidates=candidates,
        preview_url=preview_url,
        renditions=[
            RenditionRead(
                quality=str(r.get("quality", "")),
                width=int(r.get("width", 0)),
                height=int(r.get("height", 0)),
                bandwidth=int(r.get("bandwidth", 0)),
            )
            for r in video.renditions or []
        ],
        views=video.views,
        likes=video.likes,
        dislikes=video.dislikes,
        my_rating=my_rating if principal is not None else None,
        comments_count=video.comments_count,
        comment_policy=video.comment_policy,
        hidden=video.hidden,
        publish_state=publishing.state(cast(GalleryVideo, video)),
        publish_at=video.publish_at,
        playable=video.status is VideoStatus.PROCESSING and bool(video.playable),
        version=video.version,
        created_at=video.created_at,
        updated_at=video.updated_at,
    )


def thumbnail_choice(video: GalleryVideo) -> ThumbnailChoice:
    """Whose thumbnail is shown: the owner's image, a candidate they chose, or the
    pipeline's own."""
    if video.custom_thumbnail_key is not None:
        return ThumbnailChoice.CUSTOM
    if video.thumbnail_pick is not None:
        return ThumbnailChoice.CANDIDATE
    return ThumbnailChoice.AUTO


def url_expiry(ttl: int) -> timedelta:
    return timedelta(seconds=ttl)
