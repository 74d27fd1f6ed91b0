"""Applying the processor's job events to videos, idempotently, and the consumer loop.

Delivery is at least once and unordered, so each event is applied with ONE conditional
UPDATE that only matches when the event is news:

- same job as the video follows: only a higher ``seq`` (the processor bumps it on
  every move, retries of a failed/cancelled job included), and nothing after that job
  COMPLETED (a late ``PROCESSING`` cannot undo ``ready``);
- another job (a re-process or retry): only a job never seen before for this video and
  not older than the last applied event — a superseded job's late events are dropped.

Status mapping: PENDING/DOWNLOADING/PROCESSING/UPLOADING -> ``processing`` (+progress);
COMPLETED -> ``ready`` with metadata, thumbnail (the owner's choice kept: see
:func:`shown_thumbnail`) and its candidates, preview, renditions and the media outputs
beside them (DASH, audio and text tracks, chapters, storyboard), and published if
the owner chose "publish when ready"; FAILED ->
``failed`` with the reason; CANCELLED -> back to ``ready`` (progress 100) when an
earlier job left playable outputs, else ``uploaded`` (progress 0: the video can be
processed again).

While a job runs, its events may say what of it is already watchable (``playable``: the
lowest rung's and the audio tracks' growing playlists); the video keeps it until the job
ends or another job takes over, and plays it meanwhile (see ``manifests.serve_growing``).
A ``FAILED`` or ``CANCELLED`` event also schedules the job's outputs for deletion through
the outbox, in the transaction that applies it: nothing serves them any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from enum import Enum
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import ColumnElement, CursorResult, and_, case, exists, false, null, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import deletions
from videoforge.gallery.lifecycle import publisher as lifecycle
from videoforge.gallery.models import GalleryVideo, GalleryVideoJob, VideoStatus
from videoforge.gallery.usage import service as usage
from videoforge.infra import tracing
from videoforge.infra.db import session_scope, utcnow, wait_until_reachable
from videoforge.infra.errors import log_failure, unavailable_from
from videoforge.infra.queue.base import QueueMessage
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.keys import is_import_of, output_prefix
from videoforge.messages import MEDIA_FACTS, JobEvent, JobStatus, Playable, resolution

log = structlog.get_logger("videoforge.gallery.events")

EVENT_BATCH = 10
EVENT_POLL_SECONDS = 2.0
ERROR_BACKOFF_SECONDS = 2.0
#: A run handed back or starting again: what it stored is rewritten from the start.
_STARTING_OVER = frozenset({JobStatus.PENDING, JobStatus.DOWNLOADING})
#: Final statuses whose job's outputs nobody will serve: the gallery deletes them.
_ABANDONED = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


class Applied(Enum):
    APPLIED = "applied"
    STALE = "stale"  # duplicate, reordered or superseded: nothing to do
    IGNORED = "ignored"  # no video, or an event that does not belong to its video
    ORPHANED = "orphaned"  # the video is gone (deleted while its job ran)


def video_status_for(event: JobEvent, video: GalleryVideo) -> VideoStatus:
    """The one mapping from a job status to a video status."""
    if event.status is JobStatus.COMPLETED:
        return VideoStatus.READY
    if event.status is JobStatus.FAILED:
        return VideoStatus.FAILED
    if event.status is JobStatus.CANCELLED:
        return (
            VideoStatus.READY if video.hls_master_key or video.renditions else VideoStatus.UPLOADED
        )
    return VideoStatus.PROCESSING


def _changes(event: JobEvent, video: GalleryVideo) -> dict[str, Any]:
    status = video_status_for(event, video)
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    values["playable"] = _playable(event)
    if event.status is JobStatus.COMPLETED:
        values.update(progress=100, failure_reason=None)
        measured = {
            **{fact: getattr(event, fact) for fact in MEDIA_FACTS},
            "thumbnail_key": event.thumbnail_key,
            "preview_key": event.preview_key,
            "hls_master_key": event.hls_master_key,
            "metadata_key": event.metadata_key,
        }
        values.update({k: v for k, v in measured.items() if v is not None})
        if shown := resolution(event.width, event.height):
            values["resolution"] = shown
        values["renditions"] = [r.model_dump(mode="json") for r in event.renditions]
        values["media"] = media_outputs(event)
        values["thumbnail_candidates"] = list(event.thumbnail_candidates) or None
        shown = shown_thumbnail(video, event)
        if shown is not None:
            values["thumbnail_key"] = shown
        # "Publish when ready": public from now on, unless the owner chose otherwise
        # since (evaluated on the row as the update finds it, not as it was read).
        values["draft"] = case(
            (GalleryVideo.publish_when_ready.is_(True), false()), else_=GalleryVideo.draft
        )
        values["publish_when_ready"] = False
        if event.source_key and video.s3_key is None:
            values["s3_key"] = event.source_key  # an import: the processor stored the original
    elif event.status is JobStatus.FAILED:
        values["failure_reason"] = (event.error or "Processing failed.")[:2000]
    elif event.status is JobStatus.CANCELLED:
        # A cancelled run leaves no half-progress behind: back to a playable video (100)
        # or to one not processed yet (0), never "uploaded" at 24%.
        values.update(progress=100 if status is VideoStatus.READY else 0, failure_reason=None)
    else:
        values.update(progress=event.progress, failure_reason=None)
    return values


def shown_thumbnail(video: GalleryVideo, event: JobEvent) -> str | None:
    """The thumbnail after a COMPLETED event: the owner's own image, else the candidate
    they chose (by its number, among this job's candidates), else the pipeline's."""
    if video.custom_thumbnail_key is not None:
        return video.custom_thumbnail_key
    pick = video.thumbnail_pick
    if pick is not None and 1 <= pick <= len(event.thumbnail_candidates):
        return event.thumbnail_candidates[pick - 1]
    return event.thumbnail_key


def _playable(event: JobEvent) -> Any:
    """The ``playable`` column after ``event``: what the event says is watchable while
    its job runs; kept from an earlier event of the same job when this one says
    nothing; null once the job ended (the finished outputs take over, or none remain),
    when a run starts over (a retry rewrites its playlists from the first segment: a
    growing playlist must never shrink under a player) and for another job."""
    if event.status.is_final or event.status in _STARTING_OVER:
        return null()
    if event.playable is not None and _inside(event.playable, output_prefix(event.job_id)):
        return event.playable.model_dump(mode="json")
    return case((GalleryVideo.job_id == event.job_id, GalleryVideo.playable), else_=null())


def _inside(playable: Playable, job_prefix: str) -> bool:
    """Whether every playlist is under the master's directory, itself under the job's
    own outputs: whatever is there may be signed for viewers; nothing else may."""
    base = posixpath.dirname(playable.master_key) + "/"
    keys = [playable.master_key, *(r.playlist_key for r in playable.renditions)]
    keys += [a.playlist_key for a in playable.audio_tracks]
    return (
        bool(playable.renditions)
        and base.startswith(job_prefix)
        and all(k.startswith(base) and ".." not in k.split("/") for k in keys)
    )


def media_outputs(event: JobEvent) -> dict[str, Any]:
    """What sits beside the HLS master (``GalleryVideo.media``); empty lists and nulls
    from a processor older than these outputs."""
    return {
        "dash_manifest_key": event.dash_manifest_key,
        "audio_tracks": [a.model_dump(mode="json") for a in event.audio_tracks],
        "subtitles": [t.model_dump(mode="json") for t in event.subtitles],
        "chapters": [c.model_dump(mode="json") for c in event.chapters],
        "chapters_key": event.chapters_key,
        "storyboard_key": event.storyboard_key,
    }


def _is_news(event: JobEvent) -> ColumnElement[bool]:
    same_job = and_(
        GalleryVideo.job_id == event.job_id,
        or_(GalleryVideo.last_event_seq.is_(None), GalleryVideo.last_event_seq < event.seq),
        # COMPLETED is the one status a job never leaves (FAILED and CANCELLED jobs
        # can be retried under the same id, with higher seqs).
        or_(
            GalleryVideo.job_status.is_(None),
            GalleryVideo.job_status != JobStatus.COMPLETED.value,
        ),
    )
    seen_before = exists().where(
        GalleryVideoJob.video_id == GalleryVideo.id, GalleryVideoJob.job_id == event.job_id
    )
    new_job = and_(
        or_(GalleryVideo.job_id.is_(None), GalleryVideo.job_id != event.job_id),
        ~seen_before,
        or_(GalleryVideo.last_event_at.is_(None), GalleryVideo.last_event_at <= event.at),
    )
    return or_(same_job, new_job)


async def _remember_job(session: AsyncSession, event: JobEvent) -> None:
    assert event.video_id is not None
    values = {"video_id": event.video_id, "job_id": event.job_id, "first_seen_at": utcnow()}
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            postgresql.insert(GalleryVideoJob).values(**values).on_conflict_do_nothing()
        )
    else:
        await session.execute(
            sqlite.insert(GalleryVideoJob).values(**values).on_conflict_do_nothing()
        )


async def apply_event(session: AsyncSession, event: JobEvent) -> Applied:
    """Apply one event to its video if it is news (see the module docstring)."""
    if event.video_id is None:
        return Applied.IGNORED
    video = await session.get(GalleryVideo, event.video_id, populate_existing=True)
    if video is None:
        return Applied.ORPHANED
    if video.user_id != event.user_id:
        log.warning("event_owner_mismatch", job_id=str(event.job_id), video_id=str(video.id))
        return Applied.IGNORED
    before = (video.job_id, video.job_status, video.progress)
    stmt = (
        update(GalleryVideo)
        .where(GalleryVideo.id == video.id, _is_news(event))
        .values(
            **_changes(event, video),
            job_id=event.job_id,
            job_status=event.status.value,
            last_event_seq=event.seq,
            last_event_at=event.at,
        )
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[tuple[()]] = await session.execute(stmt)  # type: ignore[assignment]
    if result.rowcount != 1:
        return Applied.STALE
    await _remember_job(session, event)
    # In this transaction: the integrations' events commit with the change (outbox).
    await lifecycle.job_event_applied(session, before, video, event)
    await session.flush()
    return Applied.APPLIED


async def handle_message(infra: Infra, message: QueueMessage) -> Applied | None:
    """Parse, apply (own transaction) and delete one message.

    A malformed body is logged and deleted (it would never parse). A failure while
    applying leaves the message to come back after its visibility timeout (and to the
    dead-letter queue if it keeps failing). Returns None for a malformed message.
    """
    try:
        event = JobEvent.model_validate_json(message.body)
    except (ValidationError, ValueError):
        log.warning("event_malformed", message_id=message.message_id, body=message.body[:200])
        await infra.queues.events.delete(message.receipt)
        return None
    pending: list[int] = []
    async with session_scope(infra.sessions) as session:
        outcome = await apply_event(session, event)
        if outcome is Applied.ORPHANED and event.status.is_final:
            # Recorded with the event's outcome: a storage failure cannot lose them.
            keys, prefixes = orphaned_objects(event)
            pending = await deletions.schedule(
                session, reason="orphaned_outputs", keys=keys, prefixes=prefixes
            )
        elif outcome is Applied.APPLIED and event.status in _ABANDONED:
            # The run may have stored segments as it made them (and they may have been
            # watched): with the event that stops serving them, they are deleted.
            pending = await deletions.schedule(
                session,
                reason=deletions.ABANDONED_OUTPUTS,
                prefixes=[output_prefix(event.job_id)],
            )
    log.info(
        "event_applied",
        outcome=outcome.value,
        job_id=str(event.job_id),
        video_id=str(event.video_id),
        seq=event.seq,
        status=event.status.value,
    )
    if event.status.is_final and outcome in (Applied.APPLIED, Applied.STALE):
        # A job ended: what the video holds in storage changed. Measured before the
        # message is deleted, so a storage error brings the event (and this) back.
        assert event.video_id is not None
        await usage.measure_video(infra.sessions, infra.storage, event.video_id)
    await infra.queues.events.delete(message.receipt)
    if pending:
        done = await deletions.carry_out(infra.sessions, infra.storage, pending)
        log.info(
            "job_outputs_removed",
            reason="orphaned" if outcome is Applied.ORPHANED else "abandoned",
            job_id=str(event.job_id),
            video_id=str(event.video_id),
            retry_later=len(pending) - done,
        )
    return outcome


def orphaned_objects(event: JobEvent) -> tuple[list[str], list[str]]:
    """What a job that ended after its video was deleted left nobody can reach (the
    deletion removed only what existed then): (keys, prefixes) — the job's output prefix
    and, for an import, the original it stored under the deleted video's own prefix."""
    assert event.video_id is not None
    source = event.source_key
    keys = [source] if source and is_import_of(source, event.user_id, event.video_id) else []
    return keys, [output_prefix(event.job_id)]


class EventsHeldBack(Exception):
    """An event could not be applied because the database (or the cache) is down; the
    rest of its batch was left untried (logged already)."""


async def consume_once(infra: Infra, *, wait_seconds: float = EVENT_POLL_SECONDS) -> int:
    """Receive one batch and handle it; returns how many messages were received.

    Raises :class:`EventsHeldBack` when an outage stopped the batch: every event would
    fail alike, and each receive of it brings it closer to the dead-letter queue.
    """
    messages = await infra.queues.events.receive(
        max_messages=EVENT_BATCH, wait_seconds=wait_seconds
    )
    for message in messages:
        # The processor sent it inside the job's trace: its application belongs there too.
        with tracing.consumer_span("apply job event", message.attributes):
            try:
                await handle_message(infra, message)
            except Exception as exc:
                # Not deleted: the message comes back for another try.
                log_failure(log, "event_apply_failed", exc, message_id=message.message_id)
                if unavailable_from(exc) is not None:
                    raise EventsHeldBack(str(exc)) from exc
    return len(messages)


async def run_event_consumer(infra: Infra, stop: asyncio.Event) -> None:
    """Consume the events queue until ``stop`` is set; while the database is down,
    receive nothing (the events wait in the queue, their receives not used up)."""
    log.info("event_consumer_started")
    while not stop.is_set():
        try:
            await consume_once(infra)
            continue
        except EventsHeldBack:
            pass
        except Exception as exc:
            log_failure(log, "event_receive_failed", exc)
        await wait_until_reachable(infra.engine, stop, every=ERROR_BACKOFF_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=ERROR_BACKOFF_SECONDS)
    log.info("event_consumer_stopped")
