"""The processor's clean-up pass (run by ``videoforge sweep`` and the embedded server).

- removes temp dirs left by dead workers (never a live process's);
- deletes ``outputs/{job_id}/`` prefixes whose job no longer exists or ended ``FAILED`` /
  ``CANCELLED`` (a completed job's outputs are kept; a running one is left alone);
- re-sends jobs left ``PENDING`` without a message (the send after commit was lost):
  ``PENDING`` with ``enqueued_at`` older than ``pending_after``. A duplicate message is
  harmless — the worker's claim turns it into a no-op;
- recovers running jobs whose worker is gone and whose message is not coming back (the
  worker died on the message's last receive, so the queue moved it to the dead-letter
  queue): a job in ``DOWNLOADING``/``PROCESSING``/``UPLOADING`` whose heartbeat stopped
  ``LOST_AFTER_VISIBILITIES`` visibility timeouts ago is sent again, or failed
  (``worker_lost``) once it has used every attempt. No job stays "processing" forever.

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

from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.storage.keys import OUTPUTS_ROOT, job_of_output_key, output_prefix
from videoforge.jobs import recovery
from videoforge.jobs.events import publish
from videoforge.jobs.service import enqueue
from videoforge.messages import JobStatus
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
#: A running job whose heartbeat stopped this many visibility timeouts ago is lost: had
#: its message been coming back, a worker would have reclaimed the job long before.
LOST_AFTER_VISIBILITIES = 3
#: ...and never sooner than this (a short visibility timeout must not make a slow
#: database look like a dead worker).
MIN_LOST_AFTER = timedelta(minutes=5)


@dataclass
class SweepReport:
    """What one pass did."""

    stale_workdirs: int = 0
    output_prefixes_deleted: int = 0
    objects_deleted: int = 0
    jobs_reenqueued: int = 0
    lost_jobs_resent: int = 0
    lost_jobs_failed: int = 0

    def __str__(self) -> str:
        return (
            f"stale_workdirs={self.stale_workdirs} "
            f"output_prefixes_deleted={self.output_prefixes_deleted} "
            f"objects_deleted={self.objects_deleted} jobs_reenqueued={self.jobs_reenqueued} "
            f"lost_jobs_resent={self.lost_jobs_resent} lost_jobs_failed={self.lost_jobs_failed}"
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

    await _recover_lost_runs(infra, current, report)
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
    ids = sorted(job_ids)
    async with infra.sessions() as session:
        found = await recovery.statuses(session, ids)
    for job_id in ids:
        status = found.get(job_id)
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
    async with infra.sessions() as session:
        stuck = await recovery.stuck_pending(session, older_than=older_than, limit=REENQUEUE_BATCH)
        # A chunked job whose parts are done waits for a stitch message that was lost.
        stuck += await recovery.unstitched(session, older_than=older_than, limit=REENQUEUE_BATCH)
    for job_id in stuck:
        await enqueue(infra.queues, job_id, sessions=infra.sessions)
        report.jobs_reenqueued += 1
        log.warning("stuck_job_reenqueued", job_id=str(job_id))


def lost_after(settings: Settings) -> timedelta:
    """How long a running job's heartbeat may be silent before the job counts as lost."""
    silence = settings.queue_visibility_timeout * LOST_AFTER_VISIBILITIES
    return max(MIN_LOST_AFTER, timedelta(seconds=silence))


async def _recover_lost_runs(infra: Infra, now: datetime, report: SweepReport) -> None:
    settings = infra.settings
    silent_since = now - lost_after(settings)
    async with infra.sessions() as session:
        silent = await recovery.silent_runs(
            session, silent_since=silent_since, limit=REENQUEUE_BATCH
        )
    for run in silent:
        give_up = run.attempts >= settings.queue_max_receives
        async with session_scope(infra.sessions) as session:
            change = await recovery.recover_lost(
                session, run, silent_since=silent_since, now=now, give_up=give_up
            )
        if change is None:
            continue
        own = (change.event,) if change.job.parent_id is None else ()  # parts: not published
        for event in (*own, *change.also):
            await publish(infra.queues, event)
        job_id = str(run.job_id)
        if give_up:
            report.lost_jobs_failed += 1
            log.error("lost_job_failed", job_id=job_id, attempts=run.attempts)
        else:
            await enqueue(infra.queues, run.job_id, sessions=infra.sessions)
            report.lost_jobs_resent += 1
            log.warning(
                "lost_job_resent", job_id=job_id, attempts=run.attempts, was=str(run.status)
            )


async def _run(settings: Settings) -> SweepReport:
    from videoforge.infra.runtime import build_infra
    from videoforge.migrations import check_migrated

    infra = await build_infra(settings)
    try:
        await check_migrated(infra.engine)
        return await sweep(infra)
    finally:
        await infra.aclose()


def run(settings: Settings) -> SweepReport:
    """Sweep once with the configured backends (sync entry point)."""
    return asyncio.run(_run(settings))
