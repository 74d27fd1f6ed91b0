"""Rules of the job domain, used by the gateway (create, read, cancel, retry) and the worker.

Sessions are passed in and only flushed: the caller's ``infra.db.session_scope`` commits.
Queue messages are sent *after* that commit (:func:`enqueue`, and the events through
:func:`videoforge.jobs.events.publish_job`), never for a transaction that rolled back.
A message lost between the commit and the send is found again by the processor's sweep
(``PENDING`` with an old ``enqueued_at``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.infra.db import utcnow
from videoforge.infra.errors import BadRequest, Conflict, NotFound
from videoforge.infra.queue.base import Queues
from videoforge.jobs.estimates import estimate, estimate_all
from videoforge.jobs.failures import is_permanent_failure
from videoforge.jobs.models import (
    IDEMPOTENCY_KEY_LEN,
    INPUT_SOURCE_LEN,
    USER_ID_LEN,
    Job,
    MediaAsset,
)
from videoforge.jobs.parts import cancel_parts
from videoforge.jobs.schemas import JobPage, JobRead, MediaAssetRead
from videoforge.jobs.transitions import NON_FINAL_STATUSES, RUNNING_STATUSES, transition
from videoforge.messages import JobMessage, JobStatus

log = structlog.get_logger("videoforge.jobs")

OUTPUT_FORMATS = frozenset({"hls"})
MAX_PAGE_SIZE = 100


def is_url_source(source: str) -> bool:
    """Whether a job's ``input_source`` is an http(s) URL to import (else a storage key)."""
    return source.lower().startswith(("http://", "https://"))


def _validate_source(source: str) -> None:
    if not source or len(source) > INPUT_SOURCE_LEN:
        raise BadRequest("input_source is empty or too long", code="invalid_input_source")
    if any(ord(c) < 0x20 or c == "\x7f" for c in source):
        raise BadRequest("input_source contains control characters", code="invalid_input_source")
    if is_url_source(source):
        return  # the shape is checked by the gateway; the fetcher does the SSRF checks
    if "://" in source:
        raise BadRequest("only http(s) URLs can be imported", code="invalid_input_source")
    parts = source.split("/")
    if source.startswith("/") or "\\" in source or any(p in {"", ".", ".."} for p in parts):
        raise BadRequest("input_source is not a valid storage key", code="invalid_input_source")


async def create_job(
    session: AsyncSession,
    *,
    user_id: str,
    input_source: str,
    video_id: uuid.UUID | None = None,
    output_format: str = "hls",
    idempotency_key: str | None = None,
    loudness_normalization: bool = True,
) -> Job:
    """Create a ``PENDING`` job (flushed, not committed); call :func:`enqueue` after commit.

    Idempotent on ``(user_id, idempotency_key)``: the same key returns the job made the
    first time — also when two requests race — and a key reused for another source is a
    ``Conflict`` (``idempotency_key_reused``).
    """
    if not user_id or len(user_id) > USER_ID_LEN:
        raise BadRequest("user_id is empty or too long", code="invalid_user_id")
    if output_format not in OUTPUT_FORMATS:
        raise BadRequest(
            f"output_format must be one of {sorted(OUTPUT_FORMATS)}", code="invalid_output_format"
        )
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_LEN:
        raise BadRequest("Idempotency-Key must be 1-255 characters", code="invalid_idempotency_key")
    _validate_source(input_source)

    if idempotency_key is not None:
        existing = await by_idempotency_key(session, user_id, idempotency_key)
        if existing is not None:
            return _same_request(existing, input_source, video_id)

    now = utcnow()
    job = Job(
        id=uuid.uuid4(),
        user_id=user_id,
        video_id=video_id,
        input_source=input_source,
        output_format=output_format,
        loudness_normalization=loudness_normalization,
        status=JobStatus.PENDING,
        progress=0,
        attempts=0,
        event_seq=0,
        cancel_requested=False,
        idempotency_key=idempotency_key,
        # Counted from creation: if the send after commit is lost, the sweep re-sends.
        enqueued_at=now,
        created_at=now,
        updated_at=now,
    )
    if idempotency_key is None:
        session.add(job)
        await session.flush()
        return job
    # A concurrent request with the same key may win the unique constraint; the savepoint
    # keeps the caller's transaction usable so we can return the winner's job.
    try:
        async with session.begin_nested():
            session.add(job)
            await session.flush()
    except IntegrityError:
        # The savepoint rollback expunged our pending row; read the winner's.
        existing = await by_idempotency_key(session, user_id, idempotency_key)
        if existing is None:
            raise
        return _same_request(existing, input_source, video_id)
    return job


async def by_idempotency_key(session: AsyncSession, user_id: str, key: str) -> Job | None:
    """The job ``user_id`` created with ``Idempotency-Key: key``, if any (keys are
    per user: the same key from two users names two jobs)."""
    stmt = select(Job).where(Job.user_id == user_id, Job.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


def _same_request(job: Job, input_source: str, video_id: uuid.UUID | None) -> Job:
    if job.input_source != input_source or job.video_id != video_id:
        raise Conflict(
            "this Idempotency-Key was already used for a different job",
            code="idempotency_key_reused",
        )
    return job


async def enqueue(
    queues: Queues,
    job_id: uuid.UUID,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> str:
    """Send the job to the jobs queue. Call it AFTER the transaction that made the job committed.

    With ``sessions``, ``enqueued_at`` is stamped in its own short transaction so the
    sweep knows the message went out. Sending twice is harmless: the worker's claim turns a
    duplicate into a no-op. Returns the queue's message id.
    """
    message_id = await queues.jobs.send(JobMessage(job_id=job_id).dumps())
    if sessions is not None:
        async with sessions() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.PENDING)
                .values(enqueued_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            await session.commit()
    log.info("job_enqueued", job_id=str(job_id), message_id=message_id)
    return message_id


async def get_job(session: AsyncSession, job_id: uuid.UUID, *, user_id: str | None = None) -> Job:
    """The job, freshly read; ``NotFound`` (``job_not_found``) if missing or, when
    ``user_id`` is given, owned by someone else (no existence leak)."""
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None or (user_id is not None and job.user_id != user_id):
        raise NotFound("job not found", code="job_not_found")
    return job


def _encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, ident = raw.split("|", 1)
        created = datetime.fromisoformat(when)
        if created.tzinfo is None:
            raise ValueError("naive cursor time")
        return created, uuid.UUID(hex=ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("invalid cursor", code="invalid_cursor") from None


async def list_jobs(
    session: AsyncSession, user_id: str, *, limit: int = 20, cursor: str | None = None
) -> JobPage:
    """A user's jobs, newest first, ``limit`` (1-100) at a time with an opaque cursor."""
    limit = max(1, min(MAX_PAGE_SIZE, limit))
    # A chunked job's parts are not the user's jobs: their video's job is.
    stmt = select(Job).where(Job.user_id == user_id, Job.parent_id.is_(None))
    if cursor:
        created, ident = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(Job.created_at < created, and_(Job.created_at == created, Job.id < ident))
        )
    stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    items = rows[:limit]
    next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
    found = await estimate_all(session, items)
    return JobPage(
        items=[
            JobRead.model_validate(j).model_copy(
                update={
                    "eta_seconds": _rounded(found[j.id].eta_seconds),
                    "queue_position": found[j.id].queue_position,
                }
            )
            for j in items
        ],
        next_cursor=next_cursor,
    )


async def request_cancel(session: AsyncSession, job_id: uuid.UUID) -> Job:
    """Cancel a job: ``PENDING`` becomes ``CANCELLED`` at once; a running job gets
    ``cancel_requested`` and its worker stops and ends it ``CANCELLED`` within seconds.

    Cancelling a job already cancelled or being cancelled is harmless; a job that ended
    otherwise is a ``Conflict`` (``job_not_cancellable``). After commit, publish the event
    with :func:`~videoforge.jobs.events.publish_job` when the status changed.
    """
    # The job can move between our read and our write (a worker claims it); a few rounds
    # of conditional updates settle it without locks.
    for _ in range(5):
        job = await get_job(session, job_id)
        if job.status is JobStatus.CANCELLED:
            return job
        if job.status.is_final:
            raise Conflict(f"job is {job.status}", code="job_not_cancellable")
        if job.status is JobStatus.PENDING:
            won = await transition(
                session,
                job_id,
                expected=JobStatus.PENDING,
                target=JobStatus.CANCELLED,
                values={"error_code": "cancelled", "error_text": "Cancelled by the user."},
            )
        else:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.in_(sorted(RUNNING_STATUSES)))
                .values(cancel_requested=True, updated_at=utcnow())
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
            won = 1 if result.first() is not None else None
            if job.parts_total is not None:
                # A chunked job's parts stop with it; waiting on them, it ends here.
                won = 1 if await cancel_parts(session, job_id) else won
        if won is not None:
            await session.flush()
            return await get_job(session, job_id)
    raise Conflict("job is changing state; try again", code="job_busy")


async def retry_job(session: AsyncSession, job_id: uuid.UUID) -> Job:
    """Put a ``FAILED`` or ``CANCELLED`` job back to ``PENDING`` (error cleared, attempts
    kept); ``Conflict`` (``job_not_retryable``) otherwise, and ``not_retryable`` for a
    permanent failure (:mod:`.failures`). Call :func:`enqueue` (and
    :func:`~videoforge.jobs.events.publish_job`) after commit."""
    job = await get_job(session, job_id)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(
            f"only failed or cancelled jobs can be retried (job is {job.status})",
            code="job_not_retryable",
        )
    if job.status is JobStatus.FAILED and is_permanent_failure(job.error_code):
        # The media or the link was refused: another run would fail the same way.
        raise Conflict(
            f"Retrying cannot help: {job.error_text or 'the file or link was refused'}",
            code="not_retryable",
        )
    won = await transition(
        session,
        job_id,
        expected=(JobStatus.FAILED, JobStatus.CANCELLED),
        target=JobStatus.PENDING,
        values={
            "error_code": None,
            "error_text": None,
            "progress": 0,
            "cancel_requested": False,
            "claim_token": None,
            "enqueued_at": utcnow(),
        },
    )
    if won is None:
        raise Conflict("job changed state; try again", code="job_not_retryable")
    return await get_job(session, job_id)


async def list_assets(session: AsyncSession, job_id: uuid.UUID) -> list[MediaAsset]:
    """The job's stored outputs, by type then key."""
    return list((await session.execute(_ASSETS_OF_JOB, {"job_id": job_id})).scalars())


#: Built once, the job bound at execution (building it was a twentieth of the CPU of a
#: job status request).
_ASSETS_OF_JOB = (
    select(MediaAsset)
    .where(MediaAsset.job_id == bindparam("job_id"))
    .order_by(MediaAsset.asset_type, MediaAsset.s3_key)
)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many jobs are in each state (for the jobs-by-state metric)."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {str(status): int(n) for status, n in rows.all()}


async def job_read(session: AsyncSession, job: Job, *, with_assets: bool = True) -> JobRead:
    """``JobRead`` of a job with its ETA and queue position (and its assets)."""
    found = await estimate(session, job)
    update: dict[str, Any] = {
        "eta_seconds": _rounded(found.eta_seconds),
        "queue_position": found.queue_position,
    }
    if with_assets:
        assets = await list_assets(session, job.id)
        update["assets"] = [MediaAssetRead.model_validate(a) for a in assets]
    return JobRead.model_validate(job).model_copy(update=update)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


async def active_job_for_video(
    session: AsyncSession, user_id: str, video_id: uuid.UUID
) -> Job | None:
    """``user_id``'s newest job for the video that has not ended, if any: asking to
    process a video again while it is being processed returns that job."""
    stmt = (
        select(Job)
        .where(
            Job.user_id == user_id,
            Job.video_id == video_id,
            Job.status.in_(sorted(NON_FINAL_STATUSES)),
        )
        .order_by(Job.created_at.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class UserJobsRemoval:
    """What :func:`remove_user_jobs` did: jobs deleted, running jobs asked to stop."""

    deleted: int
    stopping: int


async def remove_user_jobs(session: AsyncSession, user_id: str) -> UserJobsRemoval:
    """Everything of ``user_id``'s jobs, for deleting the account (flushed, not committed).

    A running job is asked to stop and kept until its worker ends it: its final event
    then reaches the gallery, which deletes the outputs of a video that is gone. Every
    other job goes now, media assets with it (ON DELETE CASCADE).
    """
    stopping = await session.execute(
        update(Job)
        .where(Job.user_id == user_id, Job.status.in_(sorted(RUNNING_STATUSES)))
        .values(cancel_requested=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    deleted = await session.execute(
        delete(Job).where(Job.user_id == user_id, Job.status.not_in(sorted(RUNNING_STATUSES)))
    )
    await session.flush()
    return UserJobsRemoval(
        deleted=int(deleted.rowcount),  # type: ignore[attr-defined]
        stopping=int(stopping.rowcount),  # type: ignore[attr-defined]
    )
