"""The gallery's upload routes: upload URLs (single and multipart), the multipart
calls, and the confirm that turns an upload into a job (see :mod:`uploads`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from videoforge.gallery import confirm, deletions, limits, service, uploads
from videoforge.gallery.api import InfraDep, User, client_ip
from videoforge.gallery.moderation.models import BlockScope
from videoforge.gallery.moderation.service import ensure_not_blocked
from videoforge.gallery.schemas import (
    MultipartAbort,
    MultipartComplete,
    MultipartParts,
    MultipartPartsRequest,
    UploadConfirm,
    UploadRequest,
    UploadTicket,
    VideoRead,
)
from videoforge.infra.db import session_scope
from videoforge.infra.openapi import ErrorBody, error_responses

router = APIRouter(responses=error_responses())


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
        ip=client_ip(request),
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
    outcome = await confirm.confirm_upload(
        infra.sessions, infra.storage, infra.settings, principal, body
    )
    # After the commit: the outbox rows are recorded, so a failed delete is retried.
    await deletions.carry_out(infra.sessions, infra.storage, outcome.pending)
    await confirm.close_upload(infra.storage, outcome)
    # Raised after the commit: the rejected state must stick with the deleted bytes.
    if isinstance(outcome, confirm.Rejected):
        raise outcome.error
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return await service.to_read(outcome.video, principal, infra.storage)
