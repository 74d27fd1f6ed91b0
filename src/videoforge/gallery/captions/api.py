"""Routes of captions: an owner uploads, lists and deletes caption tracks of a video."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest
from starlette.types import Message

from videoforge.gallery import deletions, service
from videoforge.gallery.access import ensure_owner_or_admin
from videoforge.gallery.api import InfraDep, MaybeUser
from videoforge.gallery.bodies import read_capped
from videoforge.gallery.captions import service as captions
from videoforge.gallery.captions.schemas import CaptionList, CaptionRead, CaptionSource
from videoforge.gallery.usage import service as usage
from videoforge.infra.db import session_scope
from videoforge.infra.errors import PayloadTooLarge, UnsupportedMediaType
from videoforge.infra.openapi import ErrorBody, error_responses

router = APIRouter(responses=error_responses(), tags=["captions"])

#: Room for the multipart framing around a file of the largest allowed size.
_MULTIPART_SLACK = 16 * 1024
_TEXT_TYPES = ("text/vtt", "text/plain", "application/x-subrip", "text/srt", "")

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "text/vtt": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "label": {"type": "string", "maxLength": 100},
                    },
                    "required": ["file"],
                }
            },
        },
    }
}


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A caption file may be at most {captions.CAPTION_MAX_BYTES // 1024} KiB.",
        code="caption_too_large",
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    return await read_capped(request, limit, _too_large)


async def _caption_body(request: Request) -> tuple[bytes, str | None]:
    """(file bytes, label from the form) of a raw SRT/VTT body or a multipart upload."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        raw = await _read_capped(request, captions.CAPTION_MAX_BYTES + _MULTIPART_SLACK)

        async def replay() -> Message:
            return {"type": "http.request", "body": raw, "more_body": False}

        form = await StarletteRequest(request.scope, replay).form(max_files=1, max_fields=4)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UnsupportedMediaType(
                "Send the caption as the form field `file`.", code="caption_file_missing"
            )
        data = await upload.read()
        label = form.get("label")
        return data, label if isinstance(label, str) else None
    if content_type not in _TEXT_TYPES:
        raise UnsupportedMediaType(
            "Send an SRT or WebVTT file (text/vtt, application/x-subrip, text/plain or "
            "multipart/form-data).",
            code="unsupported_caption_type",
        )
    return await _read_capped(request, captions.CAPTION_MAX_BYTES), None


@router.put(
    "/api/gallery/videos/{video_id}/captions/{language}",
    response_model=CaptionRead,
    responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
    openapi_extra=_BODY_DOC,
)
async def put_caption(
    video_id: uuid.UUID,
    language: str,
    request: Request,
    infra: InfraDep,
    principal: MaybeUser,
    label: Annotated[str | None, Query(max_length=100)] = None,
) -> CaptionRead:
    """Upload (or replace) the caption track for `language` (owner or admin): an SRT or
    WebVTT file, as the body or as the multipart field `file`, at most 512 KiB; `label`
    (query or form field) is the name players show. It is stored as plain-text WebVTT;
    a file that does not parse is 422 `invalid_caption`, naming the line."""
    tag = captions.normalise_language(language)
    # Who may, before the body is read: strangers get their 401/403/404 for free.
    async with session_scope(infra.sessions) as session:
        ensure_owner_or_admin(await service.load_video(session, video_id), principal)
    data, form_label = await _caption_body(request)
    async with session_scope(infra.sessions) as session:
        video = ensure_owner_or_admin(await service.load_video(session, video_id), principal)
        caption, replaced = await captions.put_caption(
            session, infra.storage, video, tag, label or form_label, data
        )
        read = CaptionRead(
            language=caption.language,
            label=caption.label,
            source=CaptionSource.UPLOADED,
            cues=caption.cues,
            url=await infra.storage.presign_get(
                caption.key, expires_in=infra.settings.stream_url_ttl
            ),
        )
    await deletions.carry_out(infra.sessions, infra.storage, replaced)
    # The video's storage figure includes its captions (gallery.usage).
    await usage.measure_video(infra.sessions, infra.storage, video_id)
    return read


@router.get("/api/gallery/videos/{video_id}/captions", response_model=CaptionList)
async def list_captions(video_id: uuid.UUID, infra: InfraDep, principal: MaybeUser) -> CaptionList:
    """Every caption track of a video the caller may see: the subtitle tracks of the
    uploaded file, then the owner's uploads (which replace an extracted track of the
    same language), each with a short-lived WebVTT URL."""
    async with session_scope(infra.sessions) as session:
        video = await service.get_visible(session, video_id, principal)
        uploaded = await captions.list_uploaded(session, video.id)
    tracks = await captions.caption_tracks(
        video, uploaded, infra.storage, infra.settings.stream_url_ttl
    )
    return CaptionList(items=tracks)


@router.delete(
    "/api/gallery/videos/{video_id}/captions/{language}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_caption(
    video_id: uuid.UUID, language: str, infra: InfraDep, principal: MaybeUser
) -> Response:
    """Delete the uploaded caption track for `language` (owner or admin); 404
    `caption_not_found` when there is none. Extracted tracks stay (re-process the video
    without them to drop them)."""
    tag = captions.normalise_language(language)
    async with session_scope(infra.sessions) as session:
        video = ensure_owner_or_admin(await service.load_video(session, video_id), principal)
        pending = await captions.delete_caption(session, video, tag)
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    await usage.measure_video(infra.sessions, infra.storage, video_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
