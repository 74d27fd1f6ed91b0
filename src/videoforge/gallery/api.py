"""The gallery's HTTP API (one router; the app or the all-in-one server includes it).

Handlers own their transaction (``session_scope``), and read the shared backends from
``request.app.state.infra``. The background loops are re-exported here for the
embedded server: :func:`run_event_consumer`, :func:`run_view_flusher`,
:func:`flush_views`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from videoforge.gallery import deletions, limits, playback, search, service, uploads
from videoforge.gallery import views as view_counts
from videoforge.gallery.access import ensure_owner_or_admin, not_found
from videoforge.gallery.captions import service as captions
from videoforge.gallery.captions.models import GalleryCaption
from videoforge.gallery.events import run_event_consumer
from videoforge.gallery.models import (
    GalleryVideo,
    GalleryVideoViewsDaily,
    VideoStatus,
    Visibility,
)
from videoforge.gallery.moderation.models import BlockScope
from videoforge.gallery.moderation.service import ensure_not_blocked
from videoforge.gallery.ratings.service import my_rating, my_ratings
from videoforge.gallery.schemas import (
    DailyViews,
    MultipartAbort,
    MultipartComplete,
    MultipartParts,
    MultipartPartsRequest,
    StreamUrls,
    UploadConfirm,
    UploadRequest,
    UploadTicket,
    VideoAnalytics,
    VideoCreate,
    VideoPage,
    VideoRead,
    VideoSort,
    VideoUpdate,
    ViewRecorded,
)
from videoforge.gallery.usage import service as usage
from videoforge.gallery.views import flush_views, run_view_flusher
from videoforge.infra.auth.principal import Principal, optional_principal, require_principal
from videoforge.infra.db import read_scope, session_scope, utcnow
from videoforge.infra.errors import UnprocessableEntity
from videoforge.infra.forwarded import public_base_url
from videoforge.infra.openapi import ErrorBody, error_responses
from videoforge.infra.runtime import Infra

__all__ = ["flush_views", "router", "run_event_consumer", "run_view_flusher"]


async def get_infra(request: Request) -> Infra:
    """The app's backends. ``async`` although it awaits nothing: FastAPI runs a plain
    ``def`` dependency in its thread pool, a thread hop on every request for nothing."""
    infra: Infra = request.app.state.infra
    return infra


InfraDep = Annotated[Infra, Depends(get_infra)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
User = Annotated[Principal, Depends(require_principal)]

router = APIRouter(responses=error_responses())


def _base_url(request: Request, infra: Infra) -> str:
    return public_base_url(request, infra.settings.public_url)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


#: For the domain routers (comments, moderation), which rate-limit per address too.
client_ip = _client_ip


def _etag(version: int) -> str:
    return f'"{version}"'


# ----------------------------------------------------------------------- videos
@router.get("/api/gallery/videos", response_model=VideoPage, tags=["videos"])
async def list_videos(
    infra: InfraDep,
    principal: MaybeUser,
    q: Annotated[str | None, Query(max_length=200, description="Full-text search.")] = None,
    owner: Annotated[str | None, Query(max_length=255, description="A user id, or `me`.")] = None,
    video_status: Annotated[VideoStatus | None, Query(alias="status")] = None,
    visibility: Visibility | None = None,
    min_duration: Annotated[float | None, Query(ge=0)] = None,
    max_duration: Annotated[float | None, Query(ge=0)] = None,
    sort: VideoSort = VideoSort.NEWEST,
    page: Annotated[int | None, Query(ge=1)] = None,
    per_page: Annotated[int, Query(ge=1, le=search.MAX_PER_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> VideoPage:
    """List the videos the caller may see: ready public videos for everyone, plus one's
    own (any status or visibility); admins see everything. Unlisted videos are never
    listed for others. Page with `page`/`per_page` (with a total, counted up to
    10,000; page numbers reach the first 10,000 videos, `page_too_deep` past them) or
    with `cursor` (the `next_cursor` of the previous page; stable and fast however
    deep)."""
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        # A range that cannot hold anything is a mistake in the request, not an empty page.
        raise UnprocessableEntity(
            "min_duration must not be greater than max_duration.",
            code="invalid_duration_range",
        )
    params = search.ListParams(
        q=q,
        owner=owner,
        status=video_status,
        visibility=visibility,
        min_duration=min_duration,
        max_duration=max_duration,
        sort=sort,
        page=page,
        per_page=per_page,
        cursor=cursor,
    )
    async with read_scope(infra.sessions) as session:
        result = await search.list_videos(session, principal, params)
        ratings = await my_ratings(session, [v.id for v in result.items], principal)
    items = await service.page_of(result.items, principal, infra.storage, ratings=ratings)
    return VideoPage(
        items=items,
        total=result.total,
        total_exact=result.total_exact,
        page=result.page,
        per_page=per_page,
        next_cursor=result.next_cursor,
    )


@router.post(
    "/api/gallery/videos",
    response_model=VideoRead,
    status_code=status.HTTP_201_CREATED,
    tags=["videos"],
)
async def create_video(
    request: Request, infra: InfraDep, principal: User, body: VideoCreate
) -> VideoRead:
    """Create a video owned by the caller that an import job will fill (status
    `uploaded`, no original yet), public as `publish` says. Uploaded files use
    `/api/upload/confirm` instead.
    Rate-limited per user (`video_create` in `RATE_LIMITS`; 429 with `Retry-After`)."""
    await limits.check(
        infra.cache,
        infra.settings,
        limits.VIDEO_CREATE,
        ip=_client_ip(request),
        user=principal.user_id,
    )
    async with session_scope(infra.sessions) as session:
        await ensure_not_blocked(session, principal.user_id, BlockScope.UPLOAD)
        await usage.ensure_not_full(session, infra.settings, principal.user_id)
        video = await service.create_import(session, principal, body)
    return await service.to_read(video, principal, infra.storage)


@router.get("/api/gallery/videos/{video_id}", response_model=VideoRead, tags=["videos"])
async def get_video(
    video_id: uuid.UUID, infra: InfraDep, principal: MaybeUser, response: Response
) -> VideoRead:
    """One video. Private videos, and videos not published yet (drafts, scheduled),
    are 404 to everyone but the owner and admins; the original's key and the
    thumbnail candidates are only shown to them. The `ETag` is the version for `If-Match`."""
    async with session_scope(infra.sessions) as session:
        video = await service.get_visible(session, video_id, principal)
        rating = await my_rating(session, video.id, principal)
    response.headers["ETag"] = _etag(video.version)
    return await service.to_read(video, principal, infra.storage, my_rating=rating)


@router.put("/api/gallery/videos/{video_id}", response_model=VideoRead, tags=["videos"])
async def update_video(
    video_id: uuid.UUID,
    body: VideoUpdate,
    infra: InfraDep,
    principal: MaybeUser,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> VideoRead:
    """Change title, description, visibility, `comment_policy` (`on`, `off`,
    `held`) or when it is public (`publish`: `now`, `when_ready`, `draft`, or
    `schedule` with `publish_at`; see docs/publishing.md) (owner only); only the fields
    sent are changed. With `If-Match` (412 when stale) or `version` (409 when stale) the edit
    only applies to the version the editor saw."""
    async with session_scope(infra.sessions) as session:
        video = await service.update_video(session, video_id, principal, body, if_match=if_match)
        rating = await my_rating(session, video.id, principal)
    response.headers["ETag"] = _etag(video.version)
    return await service.to_read(video, principal, infra.storage, my_rating=rating)


@router.delete(
    "/api/gallery/videos/{video_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["videos"],
)
async def delete_video(video_id: uuid.UUID, infra: InfraDep, principal: MaybeUser) -> Response:
    """Delete the video and every stored object of it: the original and the outputs of
    every job seen for it (owner or admin)."""
    async with session_scope(infra.sessions) as session:
        pending = await service.delete_video(session, video_id, principal)
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/gallery/videos/{video_id}/views",
    response_model=ViewRecorded,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["views"],
)
async def record_view(
    video_id: uuid.UUID, request: Request, infra: InfraDep, principal: MaybeUser
) -> ViewRecorded:
    """Count a view (the player calls this when playback starts). One viewer (the user,
    or the client address) counts once per video per 30 minutes; calls are rate-limited
    per address (429). `counted: true` means the view is stored. 503 `unavailable` with
    `Retry-After` while the cache or the database is down: nothing was counted."""
    client_ip = _client_ip(request)
    await limits.check(
        infra.cache,
        infra.settings,
        limits.VIEW,
        ip=client_ip,
        user=principal.user_id if principal else None,
        fail_open=True,
    )
    async with session_scope(infra.sessions) as session:
        video = await service.get_visible(session, video_id, principal)
    playback.ensure_ready(video)
    viewer = view_counts.viewer_id(principal, client_ip)
    counted = await view_counts.record_view(infra, video.id, viewer)
    return ViewRecorded(counted=counted)


@router.get(
    "/api/gallery/videos/{video_id}/analytics", response_model=VideoAnalytics, tags=["views"]
)
async def video_analytics(
    video_id: uuid.UUID,
    infra: InfraDep,
    principal: MaybeUser,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> VideoAnalytics:
    """Total views and views per day for the last `days` days (owner or admin)."""
    since = utcnow().date() - timedelta(days=days - 1)
    async with session_scope(infra.sessions) as session:
        video = ensure_owner_or_admin(await service.load_video(session, video_id), principal)
        rows = (
            await session.execute(
                select(GalleryVideoViewsDaily.day, GalleryVideoViewsDaily.views)
                .where(
                    GalleryVideoViewsDaily.video_id == video.id,
                    GalleryVideoViewsDaily.day >= since,
                )
                .order_by(GalleryVideoViewsDaily.day)
            )
        ).all()
    return VideoAnalytics(
        video_id=video.id,
        total_views=video.views,
        days=[DailyViews(day=day, views=count) for day, count in rows],
    )


# ----------------------------------------------------------------------- stream
@router.get("/api/gallery/stream/{video_id}", response_model=StreamUrls, tags=["playback"])
async def stream(
    video_id: uuid.UUID,
    request: Request,
    response: Response,
    infra: InfraDep,
    principal: MaybeUser,
) -> StreamUrls:
    """Short-lived playback URLs: the HLS master playlist and the DASH manifest, each MP4
    rendition, the audio tracks, the caption tracks (WebVTT), the chapters (and their
    WebVTT track), the storyboard's thumbnails track, the thumbnail and the preview (and
    the original, as a download, for its owner). Only for videos the caller may see, and
    only once they are ready (409 before)."""
    # Signed for this caller: no shared cache may keep them, no browser may store them.
    response.headers["Cache-Control"] = "private, no-store"
    async with session_scope(infra.sessions) as session:
        video = await service.get_visible(session, video_id, principal)
        uploaded = await captions.list_uploaded(session, video.id)
    return await playback.stream_urls(
        video, principal, infra.storage, infra.settings, _base_url(request, infra), uploaded
    )


_SIGNED_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


async def _token_video(
    infra: Infra, video_id: uuid.UUID, token: str | None
) -> tuple[GalleryVideo, list[GalleryCaption]]:
    """The video a playback token names, with its uploaded captions (403 before any read
    when the token is wrong)."""
    playback.verify_token(infra.settings, video_id, token)
    async with session_scope(infra.sessions) as session:
        video = await service.load_video(session, video_id)
        if video is None:
            raise not_found()
        uploaded = await captions.list_uploaded(session, video.id)
    return video, uploaded


@router.get(
    "/api/gallery/stream/{video_id}/dash/manifest.mpd",
    response_class=Response,
    tags=["playback"],
    responses={200: {"content": {playback.DASH_CONTENT_TYPE: {}}}},
)
async def dash_manifest(
    video_id: uuid.UUID,
    infra: InfraDep,
    token: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The DASH manifest (static MPD over the HLS stream's CMAF segments) with every
    URL signed, the owner's captions included. Authorised by the playback `token`."""
    video, uploaded = await _token_video(infra, video_id, token)
    text = await playback.serve_dash(video, token, infra.storage, infra.settings, uploaded)
    return Response(text, media_type=playback.DASH_CONTENT_TYPE, headers=_SIGNED_HEADERS)


@router.get(
    "/api/gallery/stream/{video_id}/storyboard.vtt",
    response_class=Response,
    tags=["playback"],
    responses={200: {"content": {playback.VTT_CONTENT_TYPE: {}}}},
)
async def storyboard_track(
    video_id: uuid.UUID,
    infra: InfraDep,
    token: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The storyboard: a WebVTT thumbnails track whose cues are signed sprite-sheet URLs
    with an `#xywh=x,y,w,h` fragment. Authorised by the playback `token`."""
    video, _ = await _token_video(infra, video_id, token)
    text = await playback.serve_storyboard(video, token, infra.storage, infra.settings)
    return Response(text, media_type=playback.VTT_CONTENT_TYPE, headers=_SIGNED_HEADERS)


@router.get(
    "/api/gallery/stream/{video_id}/chapters.vtt",
    response_class=Response,
    tags=["playback"],
    responses={200: {"content": {playback.VTT_CONTENT_TYPE: {}}}},
)
async def chapters_track(
    video_id: uuid.UUID,
    infra: InfraDep,
    token: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The chapters as a WebVTT chapters track: the description's timecodes when it has
    them (at least 3, from 0:00, ascending), else the file's own chapters."""
    video, _ = await _token_video(infra, video_id, token)
    text = playback.serve_chapters(video, token, infra.settings)
    return Response(text, media_type=playback.VTT_CONTENT_TYPE, headers=_SIGNED_HEADERS)


@router.get(
    "/api/gallery/stream/{video_id}/hls/{path:path}",
    response_class=PlainTextResponse,
    tags=["playback"],
    responses={200: {"content": {playback.PLAYLIST_CONTENT_TYPE: {}}}},
)
async def hls_playlist(
    video_id: uuid.UUID,
    path: str,
    infra: InfraDep,
    token: Annotated[str | None, Query(max_length=512)] = None,
) -> PlainTextResponse:
    """An HLS playlist of the video with every URI signed. Authorised by the `token`
    from `/api/gallery/stream/{id}` (players send no Authorization header); a forged,
    expired or foreign token is 403."""
    video, uploaded = await _token_video(infra, video_id, token)
    text = await playback.serve_playlist(
        video, path, token, infra.storage, infra.settings, uploaded
    )
    return PlainTextResponse(
        text,
        media_type=playback.PLAYLIST_CONTENT_TYPE,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


# ---------------------------------------------------------------------- uploads
@router.post(
    "/api/upload/url",
    response_model=UploadTicket,
    status_code=status.HTTP_201_CREATED,
    tags=["uploads"],
    responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
)
async def upload_url(
    request: Request, infra: InfraDep, principal: User, body: UploadRequest
) -> UploadTicket:
    """A presigned upload for a new original. Files up to the multipart threshold get
    one form POST whose policy limits the size to the declared size; larger files get
    presigned multipart part URLs (then `/api/upload/multipart/complete`). Either way,
    finish with `/api/upload/confirm`. Rate-limited per user and address (429)."""
    await limits.check(
        infra.cache,
        infra.settings,
        limits.UPLOAD_URL,
        ip=_client_ip(request),
        user=principal.user_id,
    )
    async with session_scope(infra.sessions) as session:
        await ensure_not_blocked(session, principal.user_id, BlockScope.UPLOAD)
        return await uploads.issue_upload(session, infra.storage, infra.settings, principal, body)


@router.post(
    "/api/upload/multipart/complete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["uploads"],
)
async def multipart_complete(infra: InfraDep, principal: User, body: MultipartComplete) -> Response:
    """Assemble the uploaded parts (part numbers and the ETags the store returned).
    Every planned part is needed (400 `upload_incomplete`), each of its planned length
    (400 `invalid_upload`); completing again is 409 `upload_already_completed`."""
    async with session_scope(infra.sessions) as session:
        await uploads.complete_multipart(session, infra.storage, infra.settings, principal, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/upload/multipart/abort",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["uploads"],
)
async def multipart_abort(infra: InfraDep, principal: User, body: MultipartAbort) -> Response:
    """Abandon a multipart upload; its parts (or, once completed, its file) are discarded."""
    async with session_scope(infra.sessions) as session:
        pending = await uploads.abort_multipart(session, infra.storage, principal, body)
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/upload/multipart/parts", response_model=MultipartParts, tags=["uploads"])
async def multipart_parts(
    infra: InfraDep, principal: User, body: MultipartPartsRequest
) -> MultipartParts:
    """Fresh URLs for some parts, to resume an interrupted upload."""
    async with session_scope(infra.sessions) as session:
        return await uploads.resign_parts(session, infra.storage, infra.settings, principal, body)


@router.post(
    "/api/upload/confirm",
    response_model=VideoRead,
    status_code=status.HTTP_201_CREATED,
    tags=["uploads"],
    responses={
        200: {"model": VideoRead, "description": "Already confirmed: the same video."},
        413: {"model": ErrorBody},
        415: {"model": ErrorBody},
    },
)
async def confirm_upload(
    infra: InfraDep, principal: User, body: UploadConfirm, response: Response
) -> VideoRead:
    """Confirm an upload: the object must exist, be the caller's, be within the size
    limit (else deleted, 413), have the declared size (else deleted, 400
    `upload_size_mismatch`) and start like a video container (else deleted, 415).
    Creates the video with status `uploaded`, public as `publish` says (`now` unless
    chosen: a bad choice is 422 before the upload is used); confirming again returns
    the same video.
    Once confirmed, the upload's URLs can no longer change the video's original.
    403 `uploading_blocked` for an account blocked from uploading, even with a URL
    issued before the block (the object is left to the upload sweep)."""
    async with session_scope(infra.sessions) as session:
        await ensure_not_blocked(session, principal.user_id, BlockScope.UPLOAD)
    outcome = await uploads.confirm_upload(
        infra.sessions, infra.storage, infra.settings, principal, body
    )
    # After the commit: the outbox rows are recorded, so a failed delete is retried.
    await deletions.carry_out(infra.sessions, infra.storage, outcome.pending)
    await uploads.close_upload(infra.storage, outcome)
    # Raised after the commit: the rejected state must stick with the deleted bytes.
    if isinstance(outcome, uploads.Rejected):
        raise outcome.error
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return await service.to_read(outcome.video, principal, infra.storage)
