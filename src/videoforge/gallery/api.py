"""The gallery's HTTP API for videos (the app includes this router, :mod:`stream_api`,
:mod:`upload_api` and each domain's own); the dependencies every router shares.

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
from pydantic import TypeAdapter
from sqlalchemy import select

from videoforge.gallery import deletions, limits, playback, search, service
from videoforge.gallery import views as view_counts
from videoforge.gallery.access import ensure_owner_or_admin
from videoforge.gallery.events import run_event_consumer
from videoforge.gallery.listing_cache import ListingCache
from videoforge.gallery.models import (
    GalleryVideoViewsDaily,
    VideoStatus,
    Visibility,
)
from videoforge.gallery.moderation.models import BlockScope
from videoforge.gallery.moderation.service import ensure_not_blocked
from videoforge.gallery.ratings.service import my_rating, my_ratings
from videoforge.gallery.schemas import (
    DailyViews,
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
from videoforge.infra.openapi import error_responses
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


def base_url(request: Request, infra: Infra) -> str:
    return public_base_url(request, infra.settings.public_url)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def etag(version: int) -> str:
    return f'"{version}"'


# ----------------------------------------------------------------------- videos
#: The listing's wire form, serialised as FastAPI serialises a ``response_model``.
_VIDEO_PAGE = TypeAdapter(VideoPage)


@router.get("/api/gallery/videos", response_model=VideoPage, tags=["videos"])
async def list_videos(
    request: Request,
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
) -> VideoPage | Response:
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
    cache: ListingCache | None = getattr(request.app.state, "listing_cache", None)
    if principal is not None or cache is None:
        return await _listing(infra, principal, params)
    kept = cache.get(params)
    if kept is None:

        async def build() -> tuple[bytes, float]:
            publish_at = await cache.next_publish(infra.sessions)
            answer = await _listing(infra, None, params)
            body = _VIDEO_PAGE.dump_json(answer, by_alias=True)
            return body, min(publish_at, service.still_urls_change())

        kept = await cache.build_once(params, build)
    return Response(content=kept, media_type="application/json")


async def _listing(
    infra: Infra, principal: Principal | None, params: search.ListParams
) -> VideoPage:
    async with read_scope(infra.sessions) as session:
        result = await search.list_videos(session, principal, params)
        ratings = await my_ratings(session, [v.id for v in result.items], principal)
    items = await service.page_of(result.items, principal, infra.storage, ratings=ratings)
    return VideoPage(
        items=items,
        total=result.total,
        total_exact=result.total_exact,
        page=result.page,
        per_page=params.per_page,
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
        ip=client_ip(request),
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
    response.headers["ETag"] = etag(video.version)
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
    response.headers["ETag"] = etag(video.version)
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
    address = client_ip(request)
    await limits.check(
        infra.cache,
        infra.settings,
        limits.VIEW,
        ip=address,
        user=principal.user_id if principal else None,
        fail_open=True,
    )
    async with session_scope(infra.sessions) as session:
        video = await service.get_visible(session, video_id, principal)
    playback.ensure_ready(video)
    viewer = view_counts.viewer_id(principal, address)
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
