"""Estimates from the jobs table: the throughput of recent jobs is measured at most once
per ``THROUGHPUT_TTL_SECONDS`` per database, however many clients poll their jobs."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from videoforge.jobs import estimates
from videoforge.jobs.estimates import estimate
from videoforge.jobs.service import create_job


async def _measurements(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], reads: int
) -> int:
    """How many times ``reads`` estimates of a queued job read the completed jobs."""
    async with sessions() as session:
        job = await create_job(session, user_id="u1", input_source="uploads/u1/a.mp4")
        await session.commit()
    seen: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_: object) -> None:
        if "finished_at DESC" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        for _ in range(reads):
            async with sessions() as session:
                found = await estimate(session, job)
            assert found.queue_position == 1
            assert found.eta_seconds is not None
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    return len(seen)


@pytest.mark.parametrize(
    ("ttl", "measured"),
    [(3600.0, 1), (0.0, 3)],
    ids=["once-within-the-window", "again-after-the-window"],
)
async def test_throughput_is_measured_once_per_window(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    ttl: float,
    measured: int,
) -> None:
    monkeypatch.setattr(estimates, "THROUGHPUT_TTL_SECONDS", ttl)
    assert await _measurements(engine, sessions, 3) == measured


async def test_queue_positions_follow_the_order_jobs_were_sent_beside_a_running_job(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from videoforge.infra.db import utcnow
    from videoforge.jobs.estimates import estimate_all
    from videoforge.jobs.models import Job
    from videoforge.messages import JobStatus

    async with sessions() as session:
        jobs = [
            await create_job(session, user_id="u1", input_source=f"uploads/u1/{i}.mp4")
            for i in range(4)
        ]
        now = utcnow()
        # Sent in another order than made: the last one made went out first.
        for job, minutes in zip(jobs[1:], (3, 1, 5), strict=True):
            await session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(enqueued_at=now - timedelta(minutes=minutes))
                .execution_options(synchronize_session=False)
            )
        await session.execute(
            update(Job)
            .where(Job.id == jobs[0].id)
            .values(status=JobStatus.PROCESSING, progress=30, started_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    async with sessions() as session:
        fresh = [await session.get(Job, job.id, populate_existing=True) for job in jobs]
        found = await estimate_all(session, [job for job in fresh if job is not None])
    positions = [found[job.id].queue_position for job in jobs]
    assert positions == [None, 2, 3, 1]
    assert found[jobs[0].id].eta_seconds is not None  # running: what it has left
    waits = [found[job.id].eta_seconds for job in (jobs[3], jobs[1], jobs[2])]
    known = [w for w in waits if w is not None]
    assert len(known) == len(waits)
    assert known == sorted(known)  # each waits for those ahead of it
