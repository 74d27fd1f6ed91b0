"""The job domain's lookups for the gateway, on SQLite and PostgreSQL: the one
idempotency lookup, a video's job in progress, and removing a user's jobs when the
account is deleted."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.infra.db import session_scope
from videoforge.jobs import Job, create_job, transition
from videoforge.jobs.service import active_job_for_video, by_idempotency_key, remove_user_jobs
from videoforge.messages import JobStatus

S = JobStatus
SRC = "originals/u1/abc/source"


async def test_idempotency_lookup_is_per_user(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as session:
        mine = await create_job(session, user_id="u1", input_source=SRC, idempotency_key="k")
        theirs = await create_job(session, user_id="u2", input_source=SRC, idempotency_key="k")
    async with session_scope(sessions) as session:
        found = [await by_idempotency_key(session, user, "k") for user in ("u1", "u2")]
        assert [job.id if job else None for job in found] == [mine.id, theirs.id]
        assert await by_idempotency_key(session, "u1", "other") is None
        assert await by_idempotency_key(session, "u3", "k") is None


async def test_active_job_for_video_is_the_newest_unfinished_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    video = uuid.uuid4()
    async with session_scope(sessions) as session:
        assert await active_job_for_video(session, "u1", video) is None
        done = await create_job(session, user_id="u1", input_source=SRC, video_id=video)
        await transition(session, done.id, expected=S.PENDING, target=S.FAILED)
    async with session_scope(sessions) as session:
        # Only a finished job: nothing in progress.
        assert await active_job_for_video(session, "u1", video) is None
        running = await create_job(session, user_id="u1", input_source=SRC, video_id=video)
        await transition(session, running.id, expected=S.PENDING, target=S.DOWNLOADING)
    async with session_scope(sessions) as session:
        found = await active_job_for_video(session, "u1", video)
        assert found is not None
        assert found.id == running.id
        # Another user's video id, or another video: not this job.
        assert await active_job_for_video(session, "u2", video) is None
        assert await active_job_for_video(session, "u1", uuid.uuid4()) is None


async def test_remove_user_jobs_deletes_idle_ones_and_stops_running_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessions) as session:
        pending = await create_job(session, user_id="u1", input_source=SRC)
        failed = await create_job(session, user_id="u1", input_source=SRC)
        await transition(session, failed.id, expected=S.PENDING, target=S.FAILED)
        running = await create_job(session, user_id="u1", input_source=SRC)
        await transition(session, running.id, expected=S.PENDING, target=S.DOWNLOADING)
        await transition(session, running.id, expected=S.DOWNLOADING, target=S.PROCESSING)
        other = await create_job(session, user_id="u2", input_source=SRC)
    async with session_scope(sessions) as session:
        removal = await remove_user_jobs(session, "u1")
    assert (removal.deleted, removal.stopping) == (2, 1)
    async with sessions() as session:
        rows = {job.id: job for job in (await session.execute(select(Job))).scalars()}
    assert pending.id not in rows
    assert failed.id not in rows
    # Kept until its worker ends it, so its final event still reaches the gallery.
    assert rows[running.id].status is S.PROCESSING
    assert rows[running.id].cancel_requested is True
    assert rows[other.id].status is S.PENDING
    assert rows[other.id].cancel_requested is False
