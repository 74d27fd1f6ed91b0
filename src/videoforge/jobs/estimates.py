"""ETA and queue position of jobs, from the jobs table (the decisions are in eta.py)."""

from __future__ import annotations

import functools
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Executable, func, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.infra.db import utcnow
from videoforge.jobs import eta
from videoforge.jobs.models import Job
from videoforge.messages import JobStatus

#: Recent completed jobs the throughput is measured on.
HISTORY = 50
#: Queued jobs read one by one; past them, the work ahead is the average times the count.
QUEUE_WINDOW = 2000
_RUNNING = (JobStatus.DOWNLOADING, JobStatus.PROCESSING, JobStatus.UPLOADING)
#: The measured throughput is reused this long: it is the same for every job, and it
#: moves only when a job completes, while a page of polling clients asks every second.
THROUGHPUT_TTL_SECONDS = 1.0
#: Per database (a test process opens many): (measured at, throughput).
_measured: weakref.WeakKeyDictionary[Engine, tuple[float, eta.Throughput]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class Estimate:
    eta_seconds: float | None
    queue_position: int | None


def _seconds(start: datetime | None, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds()) if start is not None else 0.0


async def _throughput(session: AsyncSession) -> eta.Throughput:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    now = time.monotonic()
    recent = _measured.get(engine)
    if recent is not None and now - recent[0] < THROUGHPUT_TTL_SECONDS:
        return recent[1]
    throughput = await _measure(session)
    _measured[engine] = (now, throughput)
    return throughput


async def _measure(session: AsyncSession) -> eta.Throughput:
    rows = await session.execute(
        select(Job.duration, Job.height, Job.started_at, Job.finished_at)
        .where(
            Job.status == JobStatus.COMPLETED,
            Job.started_at.is_not(None),
            # A chunked job's parts are a share of a video, not a video's throughput.
            Job.parent_id.is_(None),
        )
        .order_by(Job.finished_at.desc())
        .limit(HISTORY)
    )
    return eta.Throughput.measure(
        [
            eta.Done(duration=d, height=h, seconds=_seconds(s, f))
            for d, h, s, f in rows.all()
            if f is not None
        ]
    )


async def estimate_all(session: AsyncSession, jobs: Sequence[Job]) -> dict[uuid.UUID, Estimate]:
    """An estimate for each of ``jobs`` (one read of the queue for them all)."""
    out: dict[uuid.UUID, Estimate] = {}
    live = [job for job in jobs if not job.status.is_final]
    for job in jobs:
        if job.status.is_final:
            out[job.id] = Estimate(eta_seconds=0.0 if job.status is JobStatus.COMPLETED else None,
                                   queue_position=None)  # fmt: skip
    if not live:
        return out
    now = utcnow()
    throughput = await _throughput(session)
    waiting = [job for job in live if job.status is JobStatus.PENDING]
    running_rows, queue = await _running_and_queued(session, with_queue=bool(waiting))
    running = {
        row.id: eta.Running(
            progress=row.progress,
            duration=row.duration,
            height=row.height,
            elapsed=_seconds(row.started_at, now),
        )
        for row in running_rows
    }
    for job in live:
        if job.id in running:
            out[job.id] = Estimate(eta.remaining(running[job.id], throughput), None)
    if waiting:
        order = _queue_order()
        index = {row.id: i for i, row in enumerate(queue)}
        queued = [eta.Waiting(duration=row.duration, height=row.height) for row in queue]
        for job in waiting:
            position = index.get(job.id)
            if position is None:  # deeper than the window: count, and assume the average
                at = job.enqueued_at or job.created_at
                position = int(
                    (
                        await session.execute(
                            select(func.count()).where(Job.status == JobStatus.PENDING, order < at)
                        )
                    ).scalar_one()
                )
                ahead = queued * (position // max(1, len(queued)) + 1)
                ahead = ahead[:position]
            else:
                ahead = queued[:position]
            own = eta.Waiting(duration=job.duration, height=job.height)
            seconds = eta.queued_eta(own, ahead, list(running.values()), throughput)
            out[job.id] = Estimate(eta_seconds=seconds, queue_position=position + 1)
    for job in live:
        out.setdefault(job.id, Estimate(None, None))
    return out


def _queue_order() -> ColumnElement[datetime]:
    """Where a queued job stands: sent (or made) first, first in line."""
    return func.coalesce(Job.enqueued_at, Job.created_at)


@functools.cache
def _running_and_queued_stmt(with_queue: bool) -> Executable:
    """Built once: the statement has no value of its own, and building it (with its
    cache key) was a tenth of a job status request's CPU."""
    order = _queue_order()
    columns = (Job.id, Job.status, Job.progress, Job.duration, Job.height, Job.started_at)
    running = select(*columns, order.label("at")).where(Job.status.in_(_RUNNING))
    if not with_queue:
        return running
    queued = (
        select(*columns, order.label("at"))
        .where(Job.status == JobStatus.PENDING)
        .order_by(order, Job.id)
        .limit(QUEUE_WINDOW)
        .subquery()
    )
    return union_all(running, select(queued))


async def _running_and_queued(
    session: AsyncSession, *, with_queue: bool
) -> tuple[Sequence[Any], Sequence[Any]]:
    """The running jobs and, ``with_queue``, the first ``QUEUE_WINDOW`` queued ones in
    line: one statement (one round trip), a UNION ALL of the two reads."""
    rows = (await session.execute(_running_and_queued_stmt(with_queue))).all()
    if not with_queue:
        return rows, []
    in_line = sorted((r for r in rows if r.status is JobStatus.PENDING), key=lambda r: (r.at, r.id))
    return [r for r in rows if r.status is not JobStatus.PENDING], in_line


async def estimate(session: AsyncSession, job: Job) -> Estimate:
    return (await estimate_all(session, [job]))[job.id]
