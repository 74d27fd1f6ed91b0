"""The job domain's part of the processor's sweep: finding what was lost, putting it right.

- :func:`statuses` of the jobs whose outputs are in storage (orphaned outputs);
- :func:`stuck_pending`: ``PENDING`` jobs whose message was never sent (or was lost);
- :func:`silent_runs` and :func:`recover_lost`: running jobs whose worker is gone and
  whose message is not coming back.

Sessions are passed in and only flushed, as everywhere in the job domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.jobs.events import job_event
from videoforge.jobs.models import Job
from videoforge.jobs.parts import fail_parent, waiting_clause
from videoforge.jobs.runs import Change
from videoforge.jobs.transitions import RUNNING_STATUSES, transition
from videoforge.messages import JobEvent, JobStatus

#: Ids per ``IN (...)`` list (well under every driver's bound-parameter limit).
_ID_CHUNK: Final = 500

_last_beat = func.coalesce(Job.heartbeat_at, Job.updated_at)


@dataclass(frozen=True)
class SilentRun:
    """A running job whose heartbeat stopped."""

    job_id: uuid.UUID
    status: JobStatus
    attempts: int


async def statuses(
    session: AsyncSession, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, JobStatus]:
    """The status of each of ``job_ids`` that exists."""
    found: dict[uuid.UUID, JobStatus] = {}
    for start in range(0, len(job_ids), _ID_CHUNK):
        rows = await session.execute(
            select(Job.id, Job.status).where(Job.id.in_(job_ids[start : start + _ID_CHUNK]))
        )
        found.update({row.id: row.status for row in rows})
    return found


async def stuck_pending(
    session: AsyncSession, *, older_than: datetime, limit: int
) -> list[uuid.UUID]:
    """``PENDING`` jobs last sent (or created) before ``older_than``, oldest first."""
    stmt = (
        select(Job.id)
        .where(
            Job.status == JobStatus.PENDING,
            func.coalesce(Job.enqueued_at, Job.created_at) < older_than,
        )
        .order_by(Job.enqueued_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def silent_runs(
    session: AsyncSession, *, silent_since: datetime, limit: int
) -> list[SilentRun]:
    """Running jobs whose last heartbeat is older than ``silent_since``, oldest first."""
    rows = await session.execute(
        select(Job.id, Job.status, Job.attempts)
        .where(
            Job.status.in_(sorted(RUNNING_STATUSES)),
            _last_beat < silent_since,
            # A chunked job waiting for its parts has no run to be lost.
            ~waiting_clause(),
        )
        .order_by(_last_beat)
        .limit(limit)
    )
    return [SilentRun(job_id, status, attempts) for job_id, status, attempts in rows]


async def recover_lost(
    session: AsyncSession,
    run: SilentRun,
    *,
    silent_since: datetime,
    now: datetime,
    give_up: bool,
) -> Change | None:
    """Put a lost run back to ``PENDING`` (to be sent again), or fail it as
    ``worker_lost`` when ``give_up``; ``None`` when it is no longer silent (its worker
    came back to life and keeps its job) or no longer there."""
    values: dict[str, object] = {"claim_token": None}
    if give_up:
        values |= {
            "error_code": "worker_lost",
            "error_text": (
                f"processing stopped {run.attempts} times without finishing (its worker was "
                "lost each time); giving up"
            ),
        }
    else:
        values["enqueued_at"] = now
    seq = await transition(
        session,
        run.job_id,
        expected=run.status,
        target=JobStatus.FAILED if give_up else JobStatus.PENDING,
        values=values,
        where=[_last_beat < silent_since],
    )
    if seq is None:
        return None
    job = await session.get(Job, run.job_id, populate_existing=True)
    assert job is not None
    also: tuple[JobEvent, ...] = ()
    if give_up and job.parent_id is not None:
        also = await fail_parent(session, job, code="worker_lost", text=job.error_text or "")
    return Change(job=job, event=job_event(job), also=also)


async def unstitched(session: AsyncSession, *, older_than: datetime, limit: int) -> list[uuid.UUID]:
    """Chunked jobs whose parts are all done, still waiting for their stitch since before
    ``older_than`` (the message that would have started it was lost)."""
    stmt = (
        select(Job.id)
        .where(
            Job.status == JobStatus.PROCESSING,
            waiting_clause(),
            Job.parts_done >= Job.parts_total,
            Job.updated_at < older_than,
        )
        .order_by(Job.updated_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


__all__ = ["SilentRun", "recover_lost", "silent_runs", "statuses", "stuck_pending", "unstitched"]
