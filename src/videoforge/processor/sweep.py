"""The processor's clean-up pass (run by ``videoforge sweep`` and the embedded server).

- removes temp dirs left by dead workers (never a live process's);
- deletes ``outputs/{job_id}/`` prefixes whose job no longer exists or ended ``FAILED`` /
  ``CANCELLED`` (a completed job's outputs are kept; a running one is left alone);
- re-sends jobs left ``PENDING`` without a message (the send after commit was lost):
  ``PENDING`` with ``enqueued_at`` older than ``pending_after``. A duplicate message is
  harmless — the worker's claim turns it into a no-op.

It never deletes anything under ``originals/``: sources belong to the gallery, whose own
sweep handles uploads that were never confirmed.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, select

from videoforge.infra.db import utcnow
from videoforge.jobs.models import Job
from videoforge.jobs.service import enqueue
from videoforge.messages import JobStatus
from videoforge.processor.keys import OUTPUTS_ROOT, job_of_output_key, output_prefix
from videoforge.processor.workdirs import remove_stale_workdirs
from videoforge.settings import Settings

if TYPE_CHECKING:
    from videoforge.infra.runtime import Infra

log = structlog.get_logger("videoforge.processor.sweep")

#: A PENDING job older than this without being received is sent again.
DEFAULT_PENDING_AFTER = timedelta(minutes=10)
#: Jobs re-sent per pass (the rest wait for the next pass).
REENQUEUE_BATCH = 500
_DROPPABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass
class SweepReport:
    """What one pass did."""

    stale_workdirs: int = 0
    output_prefixes_deleted: int = 0
    objects_deleted: int = 0
    jobs_reenqueued: int = 0

    def __str__(self) -> str:
        return (
            f"stale_workdirs={self.stale_workdirs} "
            f"output_prefixes_deleted={self.output_prefixes_deleted} "
            f"objects_deleted={self.objects_deleted} jobs_reenqueued={self.jobs_reenqueued}"
        )


async def sweep(
    infra: Infra,
    *,
    now: datetime | None = None,
    pending_after: timedelta = DEFAULT_PENDING_AFTER,
) -> SweepReport:
    """One clean-up pass over temp dirs, orphaned outputs and lost enqueues."""
    current = now or utcnow()
    settings = infra.settings
    report = SweepReport()

    removed = await asyncio.to_thread(
        remove_stale_workdirs,
        settings.work_dir,
        max_age_seconds=settings.transcode_timeout + 3600,
        now=current.timestamp(),
    )
    report.stale_workdirs = len(removed)

    await _sweep_outputs(infra, report)
    await _reenqueue_pending(infra, current - pending_after, report)
    log.info("processing_sweep_done", report=str(report))
    return report


async def _sweep_outputs(infra: Infra, report: SweepReport) -> None:
    job_ids: set[uuid.UUID] = set()
    async for info in infra.storage.list(OUTPUTS_ROOT):
        job_id = job_of_output_key(info.key)
        if job_id is not None:
            job_ids.add(job_id)
    if not job_ids:
        return
    statuses: dict[uuid.UUID, JobStatus] = {}
    ids = sorted(job_ids)
    async with infra.sessions() as session:
        for start in range(0, len(ids), 500):
            rows = await session.execute(
                select(Job.id, Job.status).where(Job.id.in_(ids[start : start + 500]))
            )
            statuses.update({row.id: row.status for row in rows})
    for job_id in ids:
        status = statuses.get(job_id)
        if status is not None and status not in _DROPPABLE:
            continue
        prefix = output_prefix(job_id)
        # The prefix is built here from a parsed UUID: it can only ever be under outputs/.
        assert prefix.startswith(OUTPUTS_ROOT)
        deleted = await infra.storage.delete_prefix(prefix)
        report.output_prefixes_deleted += 1
        report.objects_deleted += deleted
        log.info(
            "orphaned_outputs_deleted",
            job_id=str(job_id),
            job_status=str(status) if status else "missing",
            objects=deleted,
        )


async def _reenqueue_pending(infra: Infra, older_than: datetime, report: SweepReport) -> None:
    stmt = (
        select(Job.id)
        .where(
            Job.status == JobStatus.PENDING,
            func.coalesce(Job.enqueued_at, Job.created_at) < older_than,
        )
        .order_by(Job.enqueued_at)
        .limit(REENQUEUE_BATCH)
    )
    async with infra.sessions() as session:
        stuck = list((await session.execute(stmt)).scalars())
    for job_id in stuck:
        await enqueue(infra.queues, job_id, sessions=infra.sessions)
        report.jobs_reenqueued += 1
        log.warning("stuck_job_reenqueued", job_id=str(job_id))


async def _run(settings: Settings) -> SweepReport:
    from videoforge.infra.db import check_migrated
    from videoforge.infra.runtime import build_infra

    infra = await build_infra(settings)
    try:
        await check_migrated(infra.engine)
        return await sweep(infra)
    finally:
        await infra.aclose()


def run(settings: Settings) -> SweepReport:
    """Sweep once with the configured backends (sync entry point)."""
    return asyncio.run(_run(settings))
