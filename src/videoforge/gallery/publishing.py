"""When a video is public: drafts, "publish when ready" and scheduled publishing.

Two columns say it: ``draft`` (not public until its owner publishes it, or until its
processing completes with ``publish_when_ready``) and ``publish_at`` (public from then
on; null: no schedule). A video nobody made a choice for is published, so rows written
without these columns (older code, bulk loads) keep the meaning they always had.
Everything that shows a video to someone other than its owner compares ``publish_at``
with the clock when it reads (:func:`published_clause` in SQL, :func:`is_published` in
Python), so a scheduled video becomes visible exactly when its time passes, with no
background job to lag behind.

The owner's choice (:class:`PublishMode`) is turned into those two columns by one pure
function, :func:`decide`, which also carries the rules of a bad request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Select, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.lifecycle import publisher as lifecycle
from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.infra.db import utcnow
from videoforge.infra.errors import UnprocessableEntity

#: Videos announced per round of the lifecycle delivery loop.
ANNOUNCE_BATCH = 100
#: How far ahead a video may be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=366 * 2)


class PublishMode(StrEnum):
    """What the owner asks for."""

    NOW = "now"  # public now (a video already published keeps its date)
    WHEN_READY = "when_ready"  # public as soon as processing completes (now if it has)
    DRAFT = "draft"  # only the owner sees it until they publish it
    SCHEDULE = "schedule"  # public at ``publish_at`` (in the future)


class PublishState(StrEnum):
    """Where a video stands, as the API shows it."""

    PUBLISHED = "published"
    SCHEDULED = "scheduled"
    WHEN_READY = "when_ready"
    DRAFT = "draft"


@dataclass(frozen=True)
class Publishing:
    """The columns a choice sets."""

    draft: bool
    publish_when_ready: bool
    publish_at: datetime | None


def decide(
    mode: PublishMode,
    publish_at: datetime | None,
    *,
    now: datetime,
    status: VideoStatus,
    current: Publishing | None = None,
) -> Publishing:
    """The columns for ``mode`` on a video of ``status`` whose columns are ``current``
    (None: a new video).

    ``publish_at`` is required with ``schedule`` and refused with any other mode; it
    must lie in the future (a time already past is a mistake to report, not a silent
    "now") and within :data:`MAX_SCHEDULE_AHEAD`. A video already public stays public
    from when it was (``now`` and ``when_ready`` change nothing of it).
    """
    if mode is not PublishMode.SCHEDULE and publish_at is not None:
        raise UnprocessableEntity(
            "publish_at is only for publish = schedule.", code="publish_at_unexpected"
        )
    if mode is PublishMode.SCHEDULE:
        if publish_at is None:
            raise UnprocessableEntity(
                "Scheduling needs publish_at, the time to publish.", code="publish_at_required"
            )
        if publish_at <= now:
            raise UnprocessableEntity(
                "publish_at has already passed: choose a time in the future, or publish now.",
                code="publish_at_in_past",
            )
        if publish_at - now > MAX_SCHEDULE_AHEAD:
            raise UnprocessableEntity(
                "publish_at may be at most two years ahead.", code="publish_at_too_far"
            )
        return Publishing(False, False, publish_at)
    if mode is PublishMode.DRAFT:
        return Publishing(True, False, None)
    if current is not None and _state(current, now) is PublishState.PUBLISHED:
        return current
    if mode is PublishMode.WHEN_READY and status is not VideoStatus.READY:
        return Publishing(True, True, None)
    return Publishing(False, False, None)


def initial(mode: PublishMode | None, publish_at: datetime | None) -> Publishing:
    """The columns of a new video: ``now`` unless the creator chose (``schedule`` when
    only ``publish_at`` is given)."""
    if mode is None:
        mode = PublishMode.SCHEDULE if publish_at is not None else PublishMode.NOW
    return decide(mode, publish_at, now=utcnow(), status=VideoStatus.UPLOADED)


def _state(columns: Publishing, now: datetime) -> PublishState:
    if columns.draft:
        return PublishState.WHEN_READY if columns.publish_when_ready else PublishState.DRAFT
    if columns.publish_at is not None and columns.publish_at > now:
        return PublishState.SCHEDULED
    return PublishState.PUBLISHED


def is_pending(columns: Publishing, now: datetime) -> bool:
    """Whether a video with these columns is not public yet: its publication, when it
    comes, is to be announced (``publish_pending``)."""
    return _state(columns, now) is not PublishState.PUBLISHED


def columns_of(video: GalleryVideo) -> Publishing:
    return Publishing(bool(video.draft), bool(video.publish_when_ready), video.publish_at)


def state(video: GalleryVideo, now: datetime | None = None) -> PublishState:
    """The video's publishing state at ``now``."""
    return _state(columns_of(video), now or utcnow())


def is_published(video: GalleryVideo, now: datetime | None = None) -> bool:
    """Whether the video is public by its publishing (visibility aside) at ``now``."""
    return state(video, now) is PublishState.PUBLISHED


def published_clause(now: datetime | None = None) -> ColumnElement[bool]:
    """:func:`is_published` in SQL, at ``now`` or, without it, at each execution's own
    clock: listings build their statements once and run them for as long as the process
    lives, so the moment must be bound when the statement runs, not when it was built."""
    moment: Any = (
        now
        if now is not None
        else bindparam("published_at_now", callable_=_now, type_=GalleryVideo.publish_at.type)
    )
    return and_(
        GalleryVideo.draft.is_(False),
        or_(GalleryVideo.publish_at.is_(None), GalleryVideo.publish_at <= moment),
    )


def _now() -> datetime:
    return utcnow()  # looked up at each call (tests move the clock)


def due_statement(moment: datetime) -> Select[uuid.UUID]:
    """The ids of the videos whose announcement is due at ``moment``, oldest first.

    The bare column is the partial index's own predicate (``WHERE publish_pending``):
    written ``IS true``, PostgreSQL cannot match it to the index and scanned the whole
    table on every round of the lifecycle loop (0.18 s of three processes' CPU each
    round at a million videos)."""
    return (
        select(GalleryVideo.id)
        .where(
            GalleryVideo.publish_pending,
            GalleryVideo.hidden.is_(False),
            published_clause(moment),
        )
        .order_by(GalleryVideo.publish_at)
        .limit(ANNOUNCE_BATCH)
    )


async def announce_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Announce (``video.published``) each video whose publication came since its owner
    chose to hold it back: published by hand, by its processing completing, or by its
    schedule passing. Each is claimed with a conditional update, so concurrent loops
    announce it once; the event commits with the claim (the outbox). Returns how many."""
    moment = now or utcnow()
    announced = 0
    for video_id in list((await session.execute(due_statement(moment))).scalars()):
        claimed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
            update(GalleryVideo)
            .where(GalleryVideo.id == video_id, GalleryVideo.publish_pending.is_(True))
            .values(publish_pending=False)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            continue
        video = await session.get(GalleryVideo, video_id, populate_existing=True)
        assert video is not None
        await lifecycle.video_published(session, video, published_at=video.publish_at or moment)
        announced += 1
    return announced
