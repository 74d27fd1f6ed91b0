"""Routes of thumbnails: the owner picks one of the pipeline's candidates, or uploads
an image of their own."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from videoforge.gallery import deletions
from videoforge.gallery import service as videos
from videoforge.gallery.access import ensure_owner
from videoforge.gallery.api import InfraDep, MaybeUser
from videoforge.gallery.bodies import read_capped
from videoforge.gallery.schemas import ThumbnailPick, VideoRead
from videoforge.gallery.thumbnails import images, service
from videoforge.gallery.usage import service as usage
from videoforge.infra.db import session_scope
from videoforge.infra.openapi import ErrorBody, error_responses

router = APIRouter(responses=error_responses(), tags=["thumbnails"])

_IMAGE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in ("image/jpeg", "image/png", "image/webp")
        },
    }
}


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.put(
    "/api/gallery/videos/{video_id}/thumbnail",
    response_model=VideoRead,
    responses={409: {"model": ErrorBody}},
)
async def choose_thumbnail(
    video_id: uuid.UUID,
    body: ThumbnailPick,
    infra: InfraDep,
    principal: MaybeUser,
    response: Response,
) -> VideoRead:
    """Show one of the stills processing made (`thumbnail_candidates`, spread through
    the video) as the thumbnail (owner only). 409 `thumbnail_candidates_not_ready`
    before processing has made them; 422 `no_such_thumbnail_candidate` for a number
    that is not offered. The choice holds when the video is processed again."""
    async with session_scope(infra.sessions) as session:
        video, pending = await service.choose_candidate(
            session, video_id, principal, body.candidate
        )
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    _etag(response, video.version)
    return await videos.to_read(video, principal, infra.storage)


@router.put(
    "/api/gallery/videos/{video_id}/thumbnail/image",
    response_model=VideoRead,
    responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
    openapi_extra=_IMAGE_DOC,
)
async def upload_thumbnail(
    video_id: uuid.UUID, request: Request, infra: InfraDep, principal: MaybeUser, response: Response
) -> VideoRead:
    """Upload an image as the thumbnail (owner only): a JPEG, PNG or WebP file as the
    request body, at most 5 MiB (413 `thumbnail_too_large`) and 40 megapixels (422
    `image_too_large`, checked before decoding). Anything else is 415
    `unsupported_image_type`, a damaged file 422 `invalid_image`. It is never served as
    sent: the pixels are re-encoded as a JPEG of at most 1280x720, without EXIF or any
    other metadata of the original."""
    # Who may, before the body is read: strangers get their 401/403/404 for free.
    async with session_scope(infra.sessions) as session:
        ensure_owner(await videos.load_video(session, video_id), principal)
    data = await read_capped(request, images.MAX_BYTES, images.too_large)
    async with session_scope(infra.sessions) as session:
        video, pending = await service.upload_image(
            session, infra.storage, video_id, principal, data
        )
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    # The video's storage figure includes the owner's image (gallery.usage).
    await usage.measure_video(infra.sessions, infra.storage, video_id)
    _etag(response, video.version)
    return await videos.to_read(video, principal, infra.storage)
