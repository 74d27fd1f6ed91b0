"""The parts of a chunked job (issue 15): a long video encoded by many workers at once.

A part is a ``jobs`` row with a ``parent_id`` (migration 0019), so it is claimed,
heartbeaten, retried and swept like any job. Its parent goes through these states:

1. its own run (claimed as any job) plans the parts and :func:`create_parts` writes
   them in one transaction with the parent's count (``parts_total``); their messages are
   sent after the commit;
2. the same run encodes what is shared (the audio, the stills), then
   :func:`release_parent` gives up its claim: the parent stays ``PROCESSING`` with no
   claim token, *waiting* (:func:`waiting_clause`: the sweep never takes it for a lost
   run, and a message for it is not a reason to run it again);
3. every part that completes counts itself on the parent in the same transaction
   (:func:`complete_part`); whichever of the last part and the parent's release comes
   second says ``ready`` and its caller sends the *stitch* message;
4. :func:`claim_stitch` takes the ready parent for the run that stitches the parts and
   completes it like any job.

A part that fails for good fails its parent (:func:`fail_parent`) and a cancelled parent
cancels its parts (:func:`cancel_parts`). Parts have no ``video_id``: their events are
never published (the gallery and the user see the parent, whose progress is the parts'
together, :func:`part_progress`).

Sessions are passed in and only flushed, as everywhere in the job domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.infra.db import utcnow
from videoforge.jobs.events import job_event
from videoforge.jobs.models import Job
from videoforge.jobs.runs import Change, Claim, ClaimOutcome
from videoforge.jobs.transitions import RUNNING_STATUSES, set_progress, transition
from videoforge.messages import JobEvent, JobStatus

S = JobStatus

#: The share of the parent's progress bar before the parts start, and where they end
#: (the stitch has the rest).
_PARTS_FROM: Final = 5
_PARTS_TO: Final = 95


@dataclass(frozen=True)
class PartSpec:
    """One part as planned: its number, its span of the timeline, its source's key."""

    index: int
    start: float
    end: float | None
    source_key: str


@dataclass(frozen=True)
class PartDone:
    """A part's completion: its change, the parent's, and whether to stitch now."""

    change: Change
    ready: bool


def waiting_clause() -> ColumnElement[bool]:
    """A parent waiting for its parts: running, with parts and no run of its own."""
    return Job.parts_total.is_not(None) & Job.claim_token.is_(None)


async def _parent_change(session: AsyncSession, parent_id: uuid.UUID) -> Change | None:
    parent = await session.get(Job, parent_id, populate_existing=True)
    return None if parent is None else Change(job=parent, event=job_event(parent))


async def create_parts(
    session: AsyncSession, parent_id: uuid.UUID, *, token: str, parts: Sequence[PartSpec]
) -> list[uuid.UUID] | None:
    """Write ``parts`` as ``PENDING`` jobs of the parent its run (``token``) owns, and
    the parent's count; ``None`` when the claim was lost. A previous attempt's parts
    are deleted first. Send each part's message after the commit."""
    won = (
        await session.execute(
            update(Job)
            .where(
                Job.id == parent_id,
                Job.claim_token == token,
                Job.status.in_(sorted(RUNNING_STATUSES)),
            )
            .values(parts_total=len(parts), parts_done=0, updated_at=utcnow())
            .returning(Job.user_id, Job.output_format, Job.loudness_normalization)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if won is None:
        return None
    await session.execute(delete(Job).where(Job.parent_id == parent_id))
    now = utcnow()
    ids = [uuid.uuid4() for _ in parts]
    session.add_all(
        Job(
            id=job_id,
            user_id=won.user_id,
            video_id=None,
            input_source=part.source_key,
            output_format=won.output_format,
            loudness_normalization=won.loudness_normalization,
            status=S.PENDING,
            parent_id=parent_id,
            part_index=part.index,
            part_start=part.start,
            part_end=part.end,
            enqueued_at=now,
        )
        for job_id, part in zip(ids, parts, strict=True)
    )
    await session.flush()
    return ids


async def release_parent(session: AsyncSession, parent_id: uuid.UUID, *, token: str) -> bool | None:
    """The parent's run is done with its share: give up the claim and wait for the
    parts. Returns whether every part is already done (then send the stitch message),
    ``None`` when the claim was lost."""
    row = (
        await session.execute(
            update(Job)
            .where(Job.id == parent_id, Job.claim_token == token, Job.status == S.PROCESSING)
            .values(
                claim_token=None, claim_message_id=None, heartbeat_at=utcnow(), updated_at=utcnow()
            )
            .returning(Job.parts_done, Job.parts_total)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if row is None:
        return None
    return row.parts_total is not None and row.parts_done >= row.parts_total


async def _parent_progress(session: AsyncSession, parent_id: uuid.UUID) -> Change | None:
    """Set the waiting or running parent's progress from its parts' (never backwards)."""
    done, total = (
        await session.execute(
            select(func.coalesce(func.sum(Job.progress), 0), func.count(Job.id)).where(
                Job.parent_id == parent_id
            )
        )
    ).one()
    if not total:
        return None
    value = _PARTS_FROM + round((_PARTS_TO - _PARTS_FROM) * int(done) / (100 * int(total)))
    row = (
        await session.execute(
            update(Job)
            .where(
                Job.id == parent_id,
                Job.status == S.PROCESSING,
                Job.parts_total.is_not(None),
                Job.progress < value,
            )
            .values(progress=value, event_seq=Job.event_seq + 1, updated_at=utcnow())
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    return None if row is None else await _parent_change(session, parent_id)


async def part_progress(
    session: AsyncSession, job_id: uuid.UUID, *, token: str, progress: int
) -> Change | None:
    """A part's progress, and its parent's from all its parts (the event to publish is
    the parent's: a part's own are never published). ``None``: the part's claim is lost."""
    if await set_progress(session, job_id, claim_token=token, progress=progress) is None:
        return None
    part = await session.get(Job, job_id, populate_existing=True)
    assert part is not None
    assert part.parent_id is not None
    parent = await _parent_progress(session, part.parent_id)
    return Change(job=part, event=job_event(part), also=() if parent is None else (parent.event,))


async def complete_part(session: AsyncSession, job_id: uuid.UUID, *, token: str) -> PartDone | None:
    """``UPLOADING -> COMPLETED`` of a part and one more part done on its parent, in the
    caller's transaction; ``ready`` when it was the last one and the parent's own run
    is over (send the stitch message after the commit). ``None``: the claim was lost."""
    seq = await transition(
        session,
        job_id,
        expected=S.UPLOADING,
        target=S.COMPLETED,
        claim_token=token,
        values={"progress": 100, "cancel_requested": False},
    )
    if seq is None:
        return None
    part = await session.get(Job, job_id, populate_existing=True)
    assert part is not None
    assert part.parent_id is not None
    row = (
        await session.execute(
            update(Job)
            .where(Job.id == part.parent_id, Job.status == S.PROCESSING)
            .values(parts_done=Job.parts_done + 1, updated_at=utcnow())
            .returning(Job.parts_done, Job.parts_total, Job.claim_token)
            .execution_options(synchronize_session=False)
        )
    ).first()
    parent = await _parent_progress(session, part.parent_id)
    change = Change(job=part, event=job_event(part), also=() if parent is None else (parent.event,))
    ready = (
        row is not None
        and row.parts_total is not None
        and row.parts_done >= row.parts_total
        and row.claim_token is None
    )
    return PartDone(change=change, ready=ready)


async def claim_stitch(session: AsyncSession, job: Job, *, message_id: str, token: str) -> Claim:
    """Take a waiting parent whose parts are all done for the run that stitches them (it
    stays ``PROCESSING``); a message for a parent still waiting on parts, or already
    taken, is a duplicate (``FINISHED``: the last part sends another when it is time)."""
    if job.parts_total is None or job.parts_done < job.parts_total:
        return Claim(ClaimOutcome.FINISHED, job)
    row = (
        await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                Job.status == S.PROCESSING,
                waiting_clause(),
                Job.parts_done >= Job.parts_total,
            )
            .values(
                claim_token=token,
                claim_message_id=message_id,
                heartbeat_at=utcnow(),
                updated_at=utcnow(),
            )
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if row is None:
        return Claim(ClaimOutcome.DUPLICATE, job)
    claimed = await session.get(Job, job.id, populate_existing=True)
    return Claim(ClaimOutcome.CLAIMED, claimed)


async def cancel_parts(session: AsyncSession, parent_id: uuid.UUID) -> bool:
    """Stop every part of ``parent_id``: ``PENDING`` ones are cancelled at once, running
    ones asked to stop (their heartbeat notices). A parent waiting on its parts has no
    run to notice a cancel request, so it is cancelled here: returns whether it was."""
    pending = (
        await session.execute(
            select(Job.id).where(Job.parent_id == parent_id, Job.status == S.PENDING)
        )
    ).scalars()
    for part_id in list(pending):
        await transition(
            session,
            part_id,
            expected=S.PENDING,
            target=S.CANCELLED,
            values={"error_code": "cancelled", "error_text": "Its video was cancelled."},
        )
    await session.execute(
        update(Job)
        .where(Job.parent_id == parent_id, Job.status.in_(sorted(RUNNING_STATUSES)))
        .values(cancel_requested=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    seq = await transition(
        session,
        parent_id,
        expected=S.PROCESSING,
        target=S.CANCELLED,
        where=[waiting_clause()],
        values={"error_code": "cancelled", "error_text": "Cancelled by the user."},
    )
    return seq is not None


async def fail_parent(
    session: AsyncSession, part: Job, *, code: str, text: str
) -> tuple[JobEvent, ...]:
    """A part failed for good: so does its video. Its other parts are stopped. Returns
    the parent's event (none when the parent had already ended)."""
    assert part.parent_id is not None
    seq = await transition(
        session,
        part.parent_id,
        expected=RUNNING_STATUSES,
        target=S.FAILED,
        values={
            "claim_token": None,
            "error_code": code,
            "error_text": f"part {part.part_index} failed: {text}",
        },
    )
    await cancel_parts(session, part.parent_id)
    if seq is None:
        return ()
    parent = await _parent_change(session, part.parent_id)
    return () if parent is None else (parent.event,)


async def part_keys(session: AsyncSession, parent_id: uuid.UUID) -> list[tuple[int, str]]:
    """The parent's parts in order: (index, source key)."""
    rows = await session.execute(
        select(Job.part_index, Job.input_source)
        .where(Job.parent_id == parent_id)
        .order_by(Job.part_index)
    )
    return [(int(index), key) for index, key in rows if index is not None]


__all__ = [
    "PartDone",
    "PartSpec",
    "cancel_parts",
    "claim_stitch",
    "complete_part",
    "create_parts",
    "fail_parent",
    "part_keys",
    "part_progress",
    "release_parent",
    "waiting_clause",
]
