"""A job's events: built from the committed row, published with retries.

Every producer (the gateway's retry and cancel, the processor's every step, the sweep)
publishes through :func:`publish`. The event is built from the job row as committed
(``seq`` = ``event_seq``), so a consumer drops duplicates and stale reorderings by
``seq`` alone. A lost intermediate event is harmless (the next one carries the whole
state); the job itself is never rolled back because an event could not be sent.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import structlog

from videoforge.infra.db import utcnow
from videoforge.infra.queue.base import QueueError, Queues
from videoforge.jobs.models import Job
from videoforge.messages import JobEvent, JobStatus

log = structlog.get_logger("videoforge.jobs.events")

#: Sends tried per event before it is logged as lost.
PUBLISH_ATTEMPTS: Final = 3
#: Pause before the n-th retry: ``n x`` this.
RETRY_PAUSE_SECONDS: Final = 0.5


def job_event(job: Job, **extra: Any) -> JobEvent:
    """The event describing ``job``'s current state (``seq`` = its ``event_seq``)."""
    error = None
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        error = job.error_text or job.error_code
    fields: dict[str, Any] = {
        "job_id": job.id,
        "video_id": job.video_id,
        "user_id": job.user_id,
        "seq": job.event_seq,
        "status": job.status,
        "progress": job.progress,
        "at": job.updated_at or utcnow(),
        "error": error,
    }
    fields.update(extra)
    return JobEvent(**fields)


async def publish(queues: Queues, event: JobEvent) -> bool:
    """Send ``event`` on the events queue; retried briefly, then logged and given up.

    Call after the change it describes committed. Returns whether it was sent.
    """
    body = event.dumps()
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await queues.events.send(body)
        except QueueError as exc:
            log.warning("event_publish_failed", attempt=attempt, error=str(exc), seq=event.seq)
            if attempt < PUBLISH_ATTEMPTS:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
            continue
        log.debug("event_published", status=str(event.status), seq=event.seq)
        return True
    log.error("event_lost", status=str(event.status), seq=event.seq, job_id=str(event.job_id))
    return False


async def publish_job(queues: Queues, job: Job, **extra: Any) -> JobEvent:
    """Publish ``job``'s committed state (see :func:`publish`); returns the event. A
    chunked job's part is never published: its video's job speaks for it."""
    event = job_event(job, **extra)
    if job.parent_id is None:
        await publish(queues, event)
    return event


__all__ = ["PUBLISH_ATTEMPTS", "job_event", "publish", "publish_job"]
