"""The parts of a chunked job in the job domain (SQLite and PostgreSQL): the parent
counts its parts in the part's own transaction, says once when to stitch, waits without
being taken for a lost run, fails with a part and cancels its parts with it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.infra.db import session_scope, utcnow
from videoforge.jobs import Job, create_job, get_job, recovery, request_cancel, runs
from videoforge.jobs import parts as job_parts
from videoforge.jobs.runs import ClaimOutcome
from videoforge.messages import JobStatus

S = JobStatus
Sessions = async_sessionmaker[AsyncSession]
STALE = 30.0
PARENT_TOKEN = "p" * 32


async def _claim(sessions: Sessions, job_id: uuid.UUID, token: str) -> runs.Claim:
    async with session_scope(sessions) as session:
        return await runs.claim(
            session, job_id, message_id=f"m-{token[:4]}", token=token, stale_after=STALE
        )


async def _split(sessions: Sessions, count: int = 3) -> tuple[Job, list[uuid.UUID]]:
    """A parent claimed, moved to PROCESSING and split into ``count`` parts."""
    async with session_scope(sessions) as session:
        parent = await create_job(
            session, user_id="u1", input_source="originals/u1/a/source", video_id=uuid.uuid4()
        )
    assert (await _claim(sessions, parent.id, PARENT_TOKEN)).outcome is ClaimOutcome.CLAIMED
    async with session_scope(sessions) as session:
        await runs.advance(
            session, parent.id, token=PARENT_TOKEN, source=S.DOWNLOADING, target=S.PROCESSING
        )
        specs = [
            job_parts.PartSpec(i, 8.0 * i, 8.0 * (i + 1), f"outputs/{parent.id}/parts/p{i}.mp4")
            for i in range(count)
        ]
        ids = await job_parts.create_parts(session, parent.id, token=PARENT_TOKEN, parts=specs)
    assert ids is not None
    return parent, ids


async def _run_part(sessions: Sessions, part_id: uuid.UUID) -> str:
    """Claim a part and bring it to UPLOADING; returns its token."""
    token = uuid.uuid4().hex
    assert (await _claim(sessions, part_id, token)).outcome is ClaimOutcome.CLAIMED
    async with session_scope(sessions) as session:
        for source, target in ((S.DOWNLOADING, S.PROCESSING), (S.PROCESSING, S.UPLOADING)):
            await runs.advance(session, part_id, token=token, source=source, target=target)
    return token


async def _read(sessions: Sessions, job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        return await get_job(session, job_id)


async def _complete(sessions: Sessions, part_id: uuid.UUID, token: str) -> job_parts.PartDone:
    async with session_scope(sessions) as session:
        done = await job_parts.complete_part(session, part_id, token=token)
    assert done is not None
    return done


async def test_parts_are_jobs_of_their_own_with_the_parents_owner(sessions: Sessions) -> None:
    parent, ids = await _split(sessions)
    async with sessions() as session:
        rows = list(
            (
                await session.execute(
                    select(Job).where(Job.parent_id == parent.id).order_by(Job.part_index)
                )
            ).scalars()
        )
    assert [r.id for r in rows] == ids
    assert [(r.part_index, r.part_start, r.part_end) for r in rows] == [
        (0, 0.0, 8.0),
        (1, 8.0, 16.0),
        (2, 16.0, 24.0),
    ]
    assert all(r.status is S.PENDING and r.user_id == "u1" and r.video_id is None for r in rows)
    assert (await _read(sessions, parent.id)).parts_total == 3


async def test_the_last_of_the_parts_and_the_parents_release_says_stitch_once(
    sessions: Sessions,
) -> None:
    parent, ids = await _split(sessions, count=2)
    tokens = [await _run_part(sessions, i) for i in ids]
    first = await _complete(sessions, ids[0], tokens[0])
    assert not first.ready
    # The parent is still encoding its share: the last part does not stitch...
    last = await _complete(sessions, ids[1], tokens[1])
    assert not last.ready
    assert last.change.also  # the parent's progress event
    # ...the parent's release does.
    async with session_scope(sessions) as session:
        assert await job_parts.release_parent(session, parent.id, token=PARENT_TOKEN) is True
    again = await _claim(sessions, ids[1], tokens[1])
    assert again.outcome is ClaimOutcome.FINISHED  # a completed part is not counted twice
    assert (await _read(sessions, parent.id)).parts_done == 2


async def test_a_waiting_parent_is_no_lost_run_and_is_claimed_only_to_stitch(
    sessions: Sessions,
) -> None:
    parent, ids = await _split(sessions, count=2)
    async with session_scope(sessions) as session:
        assert await job_parts.release_parent(session, parent.id, token=PARENT_TOKEN) is False
    later = utcnow() + timedelta(hours=1)
    async with sessions() as session:
        silent = await recovery.silent_runs(session, silent_since=later, limit=10)
        assert parent.id not in {r.job_id for r in silent}
        assert await recovery.unstitched(session, older_than=later, limit=10) == []
    # A message for it now is a stale one: its parts are not done.
    assert (await _claim(sessions, parent.id, "x" * 32)).outcome is ClaimOutcome.FINISHED
    for part_id in ids:
        token = await _run_part(sessions, part_id)
        done = await _complete(sessions, part_id, token)
    assert done.ready
    async with sessions() as session:
        assert await recovery.unstitched(session, older_than=later, limit=10) == [parent.id]
    stitch = await _claim(sessions, parent.id, "s" * 32)
    assert stitch.outcome is ClaimOutcome.CLAIMED
    assert stitch.job is not None
    assert stitch.job.status is S.PROCESSING
    assert stitch.job.claim_token == "s" * 32
    # A second stitch message finds it taken.
    assert (await _claim(sessions, parent.id, "t" * 32)).outcome is ClaimOutcome.DUPLICATE


async def test_a_part_that_fails_fails_its_video_and_stops_the_others(sessions: Sessions) -> None:
    parent, ids = await _split(sessions)
    running = await _run_part(sessions, ids[1])
    failing = await _run_part(sessions, ids[0])
    async with session_scope(sessions) as session:
        change = await runs.fail(session, ids[0], token=failing, code="corrupt_media", text="bad")
    assert change is not None
    assert [e.job_id for e in change.also] == [parent.id]
    assert change.also[0].status is S.FAILED
    failed = await _read(sessions, parent.id)
    assert failed.status is S.FAILED
    assert failed.error_code == "corrupt_media"
    assert (await _read(sessions, ids[2])).status is S.CANCELLED
    other = await _read(sessions, ids[1])
    assert other.cancel_requested
    async with session_scope(sessions) as session:
        assert await runs.beat(session, ids[1], token=running) == runs.Beat(cancel_requested=True)


async def test_cancelling_a_waiting_parent_ends_it_and_its_parts(sessions: Sessions) -> None:
    parent, ids = await _split(sessions)
    async with session_scope(sessions) as session:
        await job_parts.release_parent(session, parent.id, token=PARENT_TOKEN)
    running = await _run_part(sessions, ids[0])
    async with session_scope(sessions) as session:
        cancelled = await request_cancel(session, parent.id)
    assert cancelled.status is S.CANCELLED
    assert (await _read(sessions, ids[1])).status is S.CANCELLED
    assert (await _read(sessions, ids[2])).status is S.CANCELLED
    async with session_scope(sessions) as session:
        assert await runs.beat(session, ids[0], token=running) == runs.Beat(cancel_requested=True)


async def test_a_chunked_job_claimed_again_starts_from_a_new_plan(sessions: Sessions) -> None:
    parent, _ = await _split(sessions)
    async with session_scope(sessions) as session:
        await runs.give_back(session, parent.id, token=PARENT_TOKEN)
    again = await _claim(sessions, parent.id, "n" * 32)
    assert again.outcome is ClaimOutcome.CLAIMED
    assert again.job is not None
    assert again.job.parts_total is None
    async with session_scope(sessions) as session:
        await runs.advance(
            session, parent.id, token="n" * 32, source=S.DOWNLOADING, target=S.PROCESSING
        )
        spec = job_parts.PartSpec(0, 0.0, None, "outputs/x/parts/p0000.mp4")
        new = await job_parts.create_parts(session, parent.id, token="n" * 32, parts=[spec])
    assert new is not None
    async with sessions() as session:
        left = (await session.execute(select(Job.id).where(Job.parent_id == parent.id))).all()
    assert [row.id for row in left] == new  # the first plan's parts are gone
