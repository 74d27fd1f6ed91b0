"""THE publisher of lifecycle events: every producer calls it, nothing else writes them.

Each function adds one outbox row (:class:`GalleryLifecycleEvent`) in the caller's
session and only flushes: the event commits or rolls back with the change that caused
it, so none is lost when the process dies after the commit (the delivery loop finds it)
and none goes out for a change that never happened. Producers: upload confirm and import
placeholders (``video.created``), the job-event applier (``job.progress``,
``video.ready``, ``video.failed``), publication (``video.published``, from
gallery.publishing) and video deletion (``video.deleted``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.lifecycle.schemas import EventType
from videoforge.gallery.models import GalleryVideo
from videoforge.infra.db import utcnow
from videoforge.messages import JobEvent, JobStatus

#: job.progress goes out at each state change and whenever progress crosses a step.
PROGRESS_STEP = 25


async def publish(
    session: AsyncSession,
    event_type: EventType,
    *,
    user_id: str,
    video_id: uuid.UUID | None,
    data: dict[str, Any],
) -> GalleryLifecycleEvent:
    """Write one event to the outbox in the caller's transaction."""
    row = GalleryLifecycleEvent(
        id=uuid.uuid4(),
        type=event_type.value,
        user_id=user_id,
        video_id=video_id,
        data=data,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


def _video(video: GalleryVideo) -> dict[str, Any]:
    return {
        "video_id": str(video.id),
        "user_id": video.user_id,
        "title": video.title,
        "visibility": str(video.visibility),
    }


async def video_created(session: AsyncSession, video: GalleryVideo) -> None:
    """An upload was confirmed, or an import's placeholder made."""
    data = {
        **_video(video),
        "status": str(video.status),
        "source": "import" if video.source_url else "upload",
    }
    await publish(
        session, EventType.VIDEO_CREATED, user_id=video.user_id, video_id=video.id, data=data
    )


async def video_published(
    session: AsyncSession, video: GalleryVideo, *, published_at: datetime
) -> None:
    """A video its owner held back is public from ``published_at`` (now, or its schedule)."""
    data = {**_video(video), "published_at": published_at.isoformat().replace("+00:00", "Z")}
    await publish(
        session, EventType.VIDEO_PUBLISHED, user_id=video.user_id, video_id=video.id, data=data
    )


async def video_deleted(session: AsyncSession, video: GalleryVideo) -> None:
    """The video's row is being deleted in this transaction."""
    await publish(
        session,
        EventType.VIDEO_DELETED,
        user_id=video.user_id,
        video_id=video.id,
        data=_video(video),
    )


def progress_is_news(before: tuple[uuid.UUID | None, str | None, int], event: JobEvent) -> bool:
    """Whether an applied job event is worth a ``job.progress``: another job, another
    status, or progress past the next :data:`PROGRESS_STEP` (``before`` is the video's
    (job id, job status, progress) before the event)."""
    job_id, job_status, progress = before
    if job_id != event.job_id or job_status != event.status.value:
        return True
    return event.progress // PROGRESS_STEP > progress // PROGRESS_STEP


async def job_event_applied(
    session: AsyncSession,
    before: tuple[uuid.UUID | None, str | None, int],
    video: GalleryVideo,
    event: JobEvent,
) -> None:
    """The events a job event that changed ``video`` (now applied) gives rise to."""
    common = {"video_id": str(video.id), "user_id": video.user_id, "job_id": str(event.job_id)}
    if progress_is_news(before, event):
        progress = 100 if event.status is JobStatus.COMPLETED else event.progress
        await publish(
            session,
            EventType.JOB_PROGRESS,
            user_id=video.user_id,
            video_id=video.id,
            data={**common, "status": event.status.value, "progress": progress},
        )
    if event.status is JobStatus.COMPLETED:
        ready = {
            **common,
            "title": video.title,
            "duration": event.duration,
            "width": event.width,
            "height": event.height,
            "renditions": [r.quality for r in event.renditions],
        }
        await publish(
            session, EventType.VIDEO_READY, user_id=video.user_id, video_id=video.id, data=ready
        )
    elif event.status is JobStatus.FAILED:
        failed = {
            **common,
            "title": video.title,
            "reason": (event.error or "Processing failed.")[:2000],
        }
        await publish(
            session, EventType.VIDEO_FAILED, user_id=video.user_id, video_id=video.id, data=failed
        )
