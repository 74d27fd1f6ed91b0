"""The gallery's playback routes: stream URLs, and the signed HLS playlists, DASH
manifest, storyboard and chapters tracks it serves itself (see :mod:`playback`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from videoforge.gallery import manifests, playback, service
from videoforge.gallery.access import not_found
from videoforge.gallery.api import InfraDep, MaybeUser, base_url
from videoforge.gallery.captions import service as captions
from videoforge.gallery.captions.models import GalleryCaption
from videoforge.gallery.models import (
    GalleryVideo,
)
from videoforge.gallery.schemas import (
    StreamUrls,
)
from videoforge.infra.db import session_scope
from videoforge.infra.openapi import error_responses
from videoforge.infra.runtime import Infra

router = APIRouter(responses=error_responses())


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
        video, principal, infra.storage, infra.settings, base_url(request, infra), uploaded
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
    text = await manifests.serve_dash(video, token, infra.storage, infra.settings, uploaded)
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
    text = await manifests.serve_storyboard(video, token, infra.storage, infra.settings)
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
    text = manifests.serve_chapters(video, token, infra.settings)
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
    text = await manifests.serve_playlist(
        video, path, token, infra.storage, infra.settings, uploaded
    )
    return PlainTextResponse(
        text,
        media_type=playback.PLAYLIST_CONTENT_TYPE,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
