"""Job events the processor publishes on the events queue after each committed change.

The event is built from the job row as committed (``seq`` = ``event_seq``), so a consumer
can drop duplicates and stale reorderings by ``seq`` alone. ``COMPLETED`` carries what
the gallery needs to make the video playable, with full storage keys.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from videoforge.infra.queue.base import QueueError, Queues
from videoforge.jobs.models import Job
from videoforge.jobs.service import job_event
from videoforge.messages import JobEvent
from videoforge.processor.keys import output_key, output_prefix

if TYPE_CHECKING:
    from videoforge.processor.pipeline import PipelineResult

log = structlog.get_logger("videoforge.processor.publisher")

PUBLISH_ATTEMPTS = 3


def completed_fields(job: Job, result: PipelineResult) -> dict[str, Any]:
    """The ``COMPLETED`` payload: media facts and the full keys of every output."""
    probe = result.probe
    return {
        "duration": probe.duration,
        "width": probe.width,
        "height": probe.height,
        "video_codec": probe.video_codec,
        "audio_codec": probe.audio_codec,
        "file_size": probe.size,
        "thumbnail_key": output_key(job.id, result.thumbnail),
        "thumbnail_candidates": [output_key(job.id, key) for key in result.thumbnail_candidates],
        "preview_key": output_key(job.id, result.preview),
        "hls_master_key": output_key(job.id, result.master_playlist),
        "metadata_key": output_key(job.id, result.metadata),
        "source_key": job.source_key,
        "renditions": [r.to_message(output_prefix(job.id)) for r in result.renditions],
        "dash_manifest_key": (
            output_key(job.id, result.dash_manifest) if result.dash_manifest else None
        ),
        "audio_tracks": [a.to_message(output_prefix(job.id)) for a in result.audio_tracks],
        "subtitles": [t.to_message(output_prefix(job.id)) for t in result.subtitles],
        "chapters": [{"start": c.start, "end": c.end, "title": c.title} for c in probe.chapters],
        "chapters_key": output_key(job.id, result.chapters) if result.chapters else None,
        "storyboard_key": output_key(job.id, result.storyboard) if result.storyboard else None,
    }


async def publish(queues: Queues, job: Job, **extra: Any) -> JobEvent | None:
    """Publish ``job``'s committed state; retried briefly, then logged and given up.

    A lost intermediate event is harmless (the next one carries the whole state); the
    job itself is never rolled back because an event could not be sent.
    """
    event = job_event(job, **extra)
    body = event.dumps()
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await queues.events.send(body)
        except QueueError as exc:
            log.warning("event_publish_failed", attempt=attempt, error=str(exc), seq=event.seq)
            if attempt < PUBLISH_ATTEMPTS:
                await asyncio.sleep(0.5 * attempt)
            continue
        log.debug("event_published", status=str(event.status), seq=event.seq)
        return event
    log.error("event_lost", status=str(event.status), seq=event.seq)
    return None
