"""``/api/jobs``: create (for a video or a URL import), list, read, cancel, retry.

Ownership of a video is asked of the gallery over HTTP with the caller's token; the
job rows are the shared job domain's (:mod:`videoforge.jobs`). Messages go to the
queue only after the transaction that made the change has committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from posixpath import basename
from typing import Annotated
from urllib.parse import unquote, urlsplit

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from videoforge.gateway.deps import GatewayState, gateway_state, request_id
from videoforge.gateway.gallery.client import GalleryClient
from videoforge.gateway.ratelimit import Action, client_ip
from videoforge.infra.auth.principal import Principal, bearer_token, require_principal
from videoforge.infra.db import read_scope, session_scope
from videoforge.infra.errors import Conflict, NotFound, ServiceUnavailable, UnprocessableEntity
from videoforge.infra.openapi import error_responses
from videoforge.infra.safe_http import (
    FetchRejected,
    is_public_address,
    parse_host_address,
    split_url,
)
from videoforge.jobs import (
    JobPage,
    JobRead,
    create_job,
    enqueue,
    get_job,
    list_jobs,
    request_cancel,
    retry_job,
)
from videoforge.jobs.events import publish_job
from videoforge.jobs.models import IDEMPOTENCY_KEY_LEN
from videoforge.jobs.service import active_job_for_video, by_idempotency_key, job_read
from videoforge.messages import JobStatus

log = structlog.get_logger("videoforge.gateway.jobs")
router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=error_responses())

URL_MAX = 2048
TITLE_MAX = 200


class JobCreate(BaseModel):
    """Either ``video_id`` (one of the caller's uploaded videos) or ``source_url``."""

    model_config = ConfigDict(extra="forbid")

    video_id: uuid.UUID | None = None
    source_url: str | None = Field(None, max_length=URL_MAX)
    title: str | None = Field(None, max_length=TITLE_MAX)
    description: str | None = Field(None, max_length=5000)
    #: EBU R128 loudness normalisation of the audio (turn off for music whose dynamics
    #: must stay as mastered).
    loudness_normalization: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> JobCreate:
        if (self.video_id is None) == (self.source_url is None):
            raise ValueError("give exactly one of video_id and source_url")
        return self


def validate_import_url(raw: str, allowed_ports: Collection[int]) -> str:
    """An import URL the fetcher would accept, as far as can be told without DNS (422
    ``invalid_url``, with the fetcher's reason): the shared rules of
    :mod:`videoforge.infra.safe_http` (scheme, userinfo, host, allowed ports) and, for a
    host written as an address in any spelling, that it is public. A name that resolves
    to a private address is refused by the worker's fetcher when it connects (the job
    fails ``blocked_address``): resolving here would be a second, racy lookup."""
    url = raw.strip()

    def bad(why: str) -> UnprocessableEntity:
        return UnprocessableEntity(f"That link cannot be imported: {why}", code="invalid_url")

    if not url or len(url) > URL_MAX:
        raise bad("it is empty or too long.")
    try:
        _, host, _, _ = split_url(url, allowed_ports)
        literal = parse_host_address(host)
    except FetchRejected as exc:
        raise bad(exc.message) from None
    if literal is not None and not is_public_address(literal):
        raise bad("it points at a private or reserved network address.")
    return url


def _title_from_url(url: str) -> str:
    parts = urlsplit(url)
    name = unquote(basename(parts.path.rstrip("/"))) or parts.hostname or "Imported video"
    clean = "".join(ch for ch in name if ch.isprintable()).strip()
    return (clean or "Imported video")[:TITLE_MAX]


def _gallery(gw: GatewayState) -> GalleryClient:
    if gw.gallery is None:
        raise ServiceUnavailable(
            "The gallery is not configured (GALLERY_URL).", code="gallery_not_configured"
        )
    return gw.gallery


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_LEN or not key.isprintable():
        raise UnprocessableEntity(
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_LEN} printable characters.",
            code="invalid_idempotency_key",
        )
    return key


@router.post("", response_model=JobRead, status_code=status.HTTP_201_CREATED)
async def create(
    body: JobCreate,
    request: Request,
    response: Response,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobRead:
    """Start processing one of your videos (``video_id``), or import a video from an
    http(s) URL (``source_url``, optional ``title``). With an ``Idempotency-Key`` header a
    retried request returns the job made the first time (``Idempotent-Replayed: true``).
    A video that already has a job in progress returns that job."""
    key = _check_key(idempotency_key)
    ip = client_ip(request)
    await gw.limiter.check(Action.JOB_CREATE, ip=ip, user=principal.user_id)
    token = bearer_token(request)
    assert token is not None
    rid = request_id(request)

    source_url = None
    if body.source_url is not None:
        # Before the gallery makes a video: a refused link is an error in the form, not
        # a failed video named after its host.
        source_url = validate_import_url(body.source_url, gw.settings.import_allowed_ports)
    if source_url is not None:
        await gw.limiter.check(Action.IMPORT, ip=ip, user=principal.user_id)

    if key is not None:
        async with session_scope(gw.infra.sessions) as session:
            existing = await by_idempotency_key(session, principal.user_id, key)
        if existing is not None:
            if body.video_id is not None and existing.video_id != body.video_id:
                raise Conflict(
                    "this Idempotency-Key was already used for a different job",
                    code="idempotency_key_reused",
                )
            if source_url is not None and existing.input_source != source_url:
                raise Conflict(
                    "this Idempotency-Key was already used for a different job",
                    code="idempotency_key_reused",
                )
            response.headers["Idempotent-Replayed"] = "true"
            return JobRead.model_validate(existing)

    gallery = _gallery(gw)
    if body.video_id is not None:
        video = await gallery.get_video(body.video_id, token=token, request_id=rid)
        if video.user_id != principal.user_id:
            # Admins can see others' videos, but jobs are their owner's business.
            raise NotFound("Video not found.", code="video_not_found")
        if not video.s3_key:
            raise Conflict(
                "This video has no uploaded file to process.", code="video_has_no_source"
            )
        async with session_scope(gw.infra.sessions) as session:
            active = await active_job_for_video(session, principal.user_id, video.id)
        if active is not None:
            response.status_code = status.HTTP_200_OK
            return JobRead.model_validate(active)
        input_source, video_id = video.s3_key, video.id
    else:
        assert source_url is not None
        video = await gallery.create_import(
            title=(body.title or "").strip() or _title_from_url(source_url),
            description=body.description,
            source_url=source_url,
            token=token,
            request_id=rid,
        )
        input_source, video_id = source_url, video.id

    async with session_scope(gw.infra.sessions) as session:
        job = await create_job(
            session,
            user_id=principal.user_id,
            input_source=input_source,
            video_id=video_id,
            idempotency_key=key,
            loudness_normalization=body.loudness_normalization,
        )
        created = JobRead.model_validate(job)
    # After the commit: a rolled-back job is never sent; a lost send is re-sent by the sweep.
    try:
        await enqueue(gw.infra.queues, created.id, sessions=gw.infra.sessions)
    except Exception:
        log.exception("job_enqueue_failed", job_id=str(created.id))
    log.info("job_created", job_id=str(created.id), video_id=str(video_id))
    return created


@router.get("", response_model=JobPage)
async def list_my_jobs(
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """Your jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    async with session_scope(gw.infra.sessions) as session:
        return await list_jobs(session, principal.user_id, limit=limit, cursor=cursor)


def _owner_filter(principal: Principal) -> str | None:
    # Admins may look at any job; everyone else only at their own (others' are 404).
    return None if principal.is_admin else principal.user_id


@router.get("/{job_id}", response_model=JobRead)
async def read(
    job_id: uuid.UUID,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> JobRead:
    """One job: status, progress, error and produced assets."""
    async with read_scope(gw.infra.sessions) as session:
        job = await get_job(session, job_id, user_id=_owner_filter(principal))
        return await job_read(session, job)


@router.post("/{job_id}/cancel", response_model=JobRead)
async def cancel(
    job_id: uuid.UUID,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> JobRead:
    """Cancel a job: a pending one at once, a running one within seconds."""
    async with session_scope(gw.infra.sessions) as session:
        before = await get_job(session, job_id, user_id=principal.user_id)
        was = before.status
        job = await request_cancel(session, job_id)
        result = JobRead.model_validate(job)
    if was is not JobStatus.CANCELLED and result.status is JobStatus.CANCELLED:
        await _publish(gw, job_id)
    return result


@router.post("/{job_id}/retry", response_model=JobRead)
async def retry(
    job_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(require_principal),
    gw: GatewayState = Depends(gateway_state),
) -> JobRead:
    """Run a failed or cancelled job again."""
    await gw.limiter.check(Action.JOB_CREATE, ip=client_ip(request), user=principal.user_id)
    async with session_scope(gw.infra.sessions) as session:
        await get_job(session, job_id, user_id=principal.user_id)
        job = await retry_job(session, job_id)
        result = JobRead.model_validate(job)
    await _publish(gw, job_id)
    try:
        await enqueue(gw.infra.queues, job_id, sessions=gw.infra.sessions)
    except Exception:
        log.exception("job_enqueue_failed", job_id=str(job_id))
    return result


async def _publish(gw: GatewayState, job_id: uuid.UUID) -> None:
    """Tell the gallery (events queue) about a state change made here; best effort —
    the processor's next event carries the state anyway."""
    try:
        async with session_scope(gw.infra.sessions) as session:
            job = await get_job(session, job_id)
        await publish_job(gw.infra.queues, job)
    except Exception:
        log.exception("job_event_publish_failed", job_id=str(job_id))
