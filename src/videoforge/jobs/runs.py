"""A worker's writes to the job it runs: claim, heartbeat, progress, steps, endings.

Every function takes the caller's session, only flushes (the caller's ``session_scope``
commits), and, where the job changed, returns a :class:`Change`: the job as written and
the event to publish once the commit is done. Every write after the claim is conditional
on the run's claim token, so a worker that lost its job (reclaimed after missed
heartbeats, cancelled, swept) can never write over its successor: the functions return
``None`` then, and the run stops.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.infra.db import utcnow
from videoforge.jobs.events import job_event
from videoforge.jobs.models import AssetType, Job, MediaAsset
from videoforge.jobs.transitions import RUNNING_STATUSES, set_progress, transition
from videoforge.messages import JobEvent, JobStatus

S = JobStatus

#: Longest error text kept on the row (the rest is in the worker's log).
_ERROR_CODE_LEN = 64


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    UNKNOWN_JOB = "unknown_job"
    FINISHED = "finished"  # final already: a duplicate or stale delivery
    DUPLICATE = "duplicate"  # another message's worker owns it
    OWNER_ALIVE = "owner_alive"  # this very message, redelivered while its owner still runs


@dataclass(frozen=True)
class Claim:
    """What :func:`claim` found; ``reclaimed`` when it took the job from a dead worker."""

    outcome: ClaimOutcome
    job: Job | None = None
    reclaimed: bool = False


@dataclass(frozen=True)
class Change:
    """A committed-to-be change of a job: the row as written and its event."""

    job: Job
    event: JobEvent
    #: Further events of other jobs the same transaction changed (a part's parent).
    also: tuple[JobEvent, ...] = ()


@dataclass(frozen=True)
class Beat:
    """A heartbeat that found the run still owning its job."""

    cancel_requested: bool


@dataclass(frozen=True)
class AssetRecord:
    """One output worth a ``media_assets`` row (playlists, files; not every segment)."""

    asset_type: AssetType
    key: str
    size: int
    quality: str | None = None

    @property
    def format(self) -> str:
        name = self.key.rsplit("/", 1)[-1]
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        return suffix[:16] or "bin"


@dataclass(frozen=True)
class Liveness:
    alive: bool
    #: When alive: seconds until the heartbeat goes stale unless it is renewed.
    stale_in: float = 0.0


def owner_liveness(heartbeat_age: float | None, *, stale_after: float) -> Liveness:
    """Whether the owner of a running job is alive, from its heartbeat's age (seconds).

    No heartbeat at all counts as dead. A negative age (the owner's clock is ahead of
    ours) counts as "just now".
    """
    if heartbeat_age is None or heartbeat_age >= stale_after:
        return Liveness(alive=False)
    return Liveness(alive=True, stale_in=stale_after - max(0.0, heartbeat_age))


async def _reload(session: AsyncSession, job_id: uuid.UUID) -> Job:
    job = await session.get(Job, job_id, populate_existing=True)
    assert job is not None  # the conditional update just matched it
    return job


async def _change(session: AsyncSession, job_id: uuid.UUID, **extra: Any) -> Change:
    job = await _reload(session, job_id)
    return Change(job=job, event=job_event(job, **extra))


async def claim(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    message_id: str,
    token: str,
    stale_after: float,
) -> Claim:
    """Take ``job_id`` for the run holding ``token``: one conditional ``PENDING ->
    DOWNLOADING``, after taking a dead worker's claim away.

    A running job whose heartbeat is younger than ``stale_after`` seconds belongs to a
    live worker: this very message redelivered (``OWNER_ALIVE``), or another message
    (``DUPLICATE``). An older heartbeat means its worker died; the job is reset to
    ``PENDING`` on the dead claim's token (which can write nothing after this) and claimed.
    """
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None:
        return Claim(ClaimOutcome.UNKNOWN_JOB)
    if job.status.is_final:
        return Claim(ClaimOutcome.FINISHED, job)
    if job.parts_total is not None and job.claim_token is None and job.status is S.PROCESSING:
        from videoforge.jobs.parts import claim_stitch  # parts builds on this module

        return await claim_stitch(session, job, message_id=message_id, token=token)
    reclaimed = False
    if job.status in RUNNING_STATUSES:
        now = utcnow()
        age = None if job.heartbeat_at is None else (now - job.heartbeat_at).total_seconds()
        if owner_liveness(age, stale_after=stale_after).alive:
            if job.claim_message_id == message_id:
                return Claim(ClaimOutcome.OWNER_ALIVE, job)
            return Claim(ClaimOutcome.DUPLICATE, job)
        stale_before = now - timedelta(seconds=stale_after)
        reset = await transition(
            session,
            job_id,
            expected=job.status,
            target=S.PENDING,
            claim_token=job.claim_token,
            values={"claim_token": None},
            where=[(Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < stale_before)],
        )
        if reset is None:
            return Claim(ClaimOutcome.DUPLICATE, job)
        reclaimed = True
    claimed = await transition(
        session,
        job_id,
        expected=S.PENDING,
        target=S.DOWNLOADING,
        values={
            "claim_token": token,
            "claim_message_id": message_id,
            "attempts": Job.attempts + 1,
            "progress": 0,
            "error_code": None,
            "error_text": None,
            # A chunked job starts again from its plan (its old parts are replaced).
            "parts_total": None,
            "parts_done": 0,
        },
    )
    if claimed is None:
        return Claim(ClaimOutcome.DUPLICATE, job)
    return Claim(ClaimOutcome.CLAIMED, await _reload(session, job_id), reclaimed=reclaimed)


async def beat(session: AsyncSession, job_id: uuid.UUID, *, token: str) -> Beat | None:
    """Touch ``heartbeat_at`` of the run's job; ``None`` when the run no longer owns it."""
    row = (
        await session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.claim_token == token,
                Job.status.in_(sorted(RUNNING_STATUSES)),
            )
            .values(heartbeat_at=utcnow())
            .returning(Job.cancel_requested)
            .execution_options(synchronize_session=False)
        )
    ).first()
    return None if row is None else Beat(cancel_requested=bool(row[0]))


async def record_progress(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    token: str,
    progress: int,
    event_fields: Mapping[str, Any] | None = None,
) -> Change | None:
    """Record the running job's progress (an event, not a move); ``None``: claim lost.
    ``event_fields`` go on the event (what of the job is already watchable)."""
    if await set_progress(session, job_id, claim_token=token, progress=progress) is None:
        return None
    return await _change(session, job_id, **(event_fields or {}))


async def advance(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    token: str,
    source: JobStatus,
    target: JobStatus,
    values: Mapping[str, Any] | None = None,
) -> Change | None:
    """The next step of a run (``DOWNLOADING -> PROCESSING -> UPLOADING``)."""
    seq = await transition(
        session, job_id, expected=source, target=target, claim_token=token, values=values
    )
    return None if seq is None else await _change(session, job_id)


async def _end(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    token: str,
    target: JobStatus,
    values: Mapping[str, Any],
) -> Change | None:
    seq = await transition(
        session,
        job_id,
        expected=RUNNING_STATUSES,
        target=target,
        claim_token=token,
        values={"claim_token": None, **values},
    )
    return None if seq is None else await _change(session, job_id)


async def fail(
    session: AsyncSession, job_id: uuid.UUID, *, token: str, code: str, text: str
) -> Change | None:
    """``FAILED`` with the reason (permanent, or the last attempt given up); a part's
    parent fails with it (:func:`videoforge.jobs.parts.fail_parent`)."""
    change = await _end(
        session,
        job_id,
        token=token,
        target=S.FAILED,
        values={"error_code": code[:_ERROR_CODE_LEN], "error_text": text},
    )
    if change is None or change.job.parent_id is None:
        return change
    from videoforge.jobs.parts import fail_parent  # parts builds on this module

    also = await fail_parent(session, change.job, code=code[:_ERROR_CODE_LEN], text=text)
    return Change(job=change.job, event=change.event, also=also)


async def cancel(session: AsyncSession, job_id: uuid.UUID, *, token: str) -> Change | None:
    """``CANCELLED``, the run having stopped at the user's request."""
    return await _end(
        session,
        job_id,
        token=token,
        target=S.CANCELLED,
        values={"error_code": "cancelled", "error_text": "Cancelled by the user."},
    )


async def give_back(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    token: str,
    error: tuple[str, str] | None = None,
    uncount_attempt: bool = False,
) -> Change | None:
    """``PENDING`` again, for another attempt (here or elsewhere).

    ``error`` (code, text) says why on the row meanwhile; ``uncount_attempt`` takes back
    the attempt the claim counted, when the failure was the machine's, not the job's.
    """
    values: dict[str, Any] = {"enqueued_at": utcnow()}
    if error is not None:
        values["error_code"], values["error_text"] = error[0][:_ERROR_CODE_LEN], error[1]
    if uncount_attempt:
        values["attempts"] = Job.attempts - 1
    return await _end(session, job_id, token=token, target=S.PENDING, values=values)


async def complete(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    token: str,
    assets: Sequence[AssetRecord],
    facts: Mapping[str, Any],
    event_fields: Mapping[str, Any],
) -> Change | None:
    """Record the assets and the media ``facts`` (job columns) and move ``UPLOADING ->
    COMPLETED``, in the caller's one transaction. ``event_fields`` go on the event."""
    await upsert_assets(session, job_id, assets)
    seq = await transition(
        session,
        job_id,
        expected=S.UPLOADING,
        target=S.COMPLETED,
        claim_token=token,
        values={"progress": 100, "cancel_requested": False, **facts},
    )
    return None if seq is None else await _change(session, job_id, **event_fields)


async def upsert_assets(
    session: AsyncSession, job_id: uuid.UUID, assets: Iterable[AssetRecord]
) -> None:
    """One row per asset, upserted on (job_id, s3_key) so a retried run overwrites."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "job_id": job_id,
            "asset_type": asset.asset_type,
            "format": asset.format,
            "s3_key": asset.key,
            "file_size": asset.size,
            "quality": asset.quality,
            "created_at": now,
        }
        for asset in assets
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(MediaAsset).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[MediaAsset.job_id, MediaAsset.s3_key],
        set_={
            "asset_type": stmt.excluded.asset_type,
            "format": stmt.excluded.format,
            "file_size": stmt.excluded.file_size,
            "quality": stmt.excluded.quality,
        },
    )
    await session.execute(stmt)


__all__ = [
    "AssetRecord",
    "Beat",
    "Change",
    "Claim",
    "ClaimOutcome",
    "Liveness",
    "advance",
    "beat",
    "cancel",
    "claim",
    "complete",
    "fail",
    "give_back",
    "owner_liveness",
    "record_progress",
    "upsert_assets",
]
