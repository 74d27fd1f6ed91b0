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
