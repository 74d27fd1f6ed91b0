"""infra.db on SQLite and PostgreSQL: the one place that commits, portable UTC datetime
and UUID columns, and SQLite's concurrency settings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from videoforge.infra.db import create_engine, session_factory, session_scope, utcnow
from videoforge.infra.queue.models import QueueMessageRow


def _row(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "message_id": uuid.uuid4(),
        "queue": "t",
        "body": "b",
        "created_at": utcnow(),
        "visible_at": utcnow(),
        "receive_count": 0,
    }
    values.update(overrides)
    return values


async def _count(engine: AsyncEngine) -> int:
    async with session_scope(session_factory(engine)) as session:
        return int(
            (await session.execute(select(func.count()).select_from(QueueMessageRow))).scalar_one()
        )


async def test_session_scope_commits_on_success(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with session_scope(sessions) as session:
        await session.execute(insert(QueueMessageRow).values(**_row()))
    assert await _count(engine) == 1


async def test_session_scope_rolls_back_on_error(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)

    class Boom(Exception):
        pass

    async def failing_writer() -> None:
        async with session_scope(sessions) as session:
            await session.execute(insert(QueueMessageRow).values(**_row()))
            await session.flush()
            raise Boom

    with pytest.raises(Boom):
        await failing_writer()
    assert await _count(engine) == 0

    # Cancellation (a worker shutting down) must roll back too.
    async def cancelled_writer() -> None:
        async with session_scope(sessions) as session:
            await session.execute(insert(QueueMessageRow).values(**_row()))
            await asyncio.sleep(10)

    task = asyncio.create_task(cancelled_writer())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _count(engine) == 0


async def test_utc_datetimes_and_uuids_round_trip(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    message_id = uuid.uuid4()
    # An aware datetime in another zone is stored as the same instant in UTC.
    local = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5)))
    async with session_scope(sessions) as session:
        await session.execute(
            insert(QueueMessageRow).values(**_row(message_id=message_id, visible_at=local))
        )
    async with session_scope(sessions) as session:
        row = (
            await session.execute(
                select(QueueMessageRow).where(QueueMessageRow.message_id == message_id)
            )
        ).scalar_one()
    assert row.message_id == message_id
    assert isinstance(row.message_id, uuid.UUID)
    assert row.visible_at == local
    assert row.visible_at.tzinfo is UTC
    assert row.visible_at.hour == 22  # 03:04 at +05:00 is 22:04 UTC the day before


async def test_naive_datetimes_are_refused(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    naive = datetime(2026, 1, 1)
    with pytest.raises(StatementError, match="naive datetime"):
        async with session_scope(sessions) as session:
            await session.execute(insert(QueueMessageRow).values(**_row(visible_at=naive)))


async def test_utc_datetime_comparisons_order_correctly(engine: AsyncEngine) -> None:
    """The queue relies on ``visible_at <= now`` in SQL: stored values must compare as
    instants on both backends (SQLite stores them as text)."""
    sessions = session_factory(engine)
    now = utcnow()
    async with session_scope(sessions) as session:
        for seconds in (-5, -0.001, 0.001, 5):
            await session.execute(
                insert(QueueMessageRow).values(
                    **_row(body=str(seconds), visible_at=now + timedelta(seconds=seconds))
                )
            )
    async with session_scope(sessions) as session:
        bodies = (
            (
                await session.execute(
                    select(QueueMessageRow.body)
                    .where(QueueMessageRow.visible_at <= now)
                    .order_by(QueueMessageRow.visible_at)
                )
            )
            .scalars()
            .all()
        )
    assert bodies == ["-5", "-0.001"]


async def test_sqlite_concurrent_writers_do_not_deadlock(sqlite_url: str) -> None:
    """Read-then-write transactions from separate engines: BEGIN IMMEDIATE makes the
    second wait for the first instead of failing with "database is locked"."""
    engines = [create_engine(sqlite_url) for _ in range(4)]

    async def read_then_write(engine: AsyncEngine, i: int) -> None:
        async with session_scope(session_factory(engine)) as session:
            await session.execute(select(func.count()).select_from(QueueMessageRow))
            await asyncio.sleep(0.05)  # hold the transaction open across an await
            await session.execute(insert(QueueMessageRow).values(**_row(body=str(i))))

    try:
        await asyncio.gather(*(read_then_write(e, i) for i, e in enumerate(engines)))
        assert await _count(engines[0]) == 4
        async with engines[0].connect() as conn:
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
        assert timeout == 30000
    finally:
        for e in engines:
            await e.dispose()


async def test_busy_pooled_connections_are_not_pinged_idle_ones_are_and_get_replaced(
    postgres_url: str, postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    from videoforge.infra import db

    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.5)
    engine = create_engine(postgres_url, pool_size=1)
    pings: list[DBAPIConnection] = []
    real_ping = engine.dialect.do_ping

    def counting_ping(dbapi_conn: DBAPIConnection) -> bool:
        pings.append(dbapi_conn)
        return bool(real_ping(dbapi_conn))

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    try:
        for _ in range(5):  # back to back: no round trip beside the query
            async with engine.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert pings == []
        # The server drops the pooled connection while it idles (a restart, a timeout).
        admin = await asyncpg.connect(postgres_admin_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.7)
        async with engine.connect() as conn:  # pinged, found dead, replaced: no error
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
        assert len(pings) >= 1
    finally:
        await engine.dispose()


async def test_read_scope_sends_no_transaction_on_postgresql_and_leaves_the_pool_transactional(
    postgres_url: str,
) -> None:
    from videoforge.infra.db import read_scope

    engine = create_engine(postgres_url, pool_size=1)  # one connection: the same one reused
    sessions = session_factory(engine)
    try:
        async with read_scope(sessions) as session:
            # A setting made for the transaction is gone by the next statement: each
            # statement was a transaction of its own (no BEGIN, so no COMMIT either).
            await session.execute(text("SELECT set_config('videoforge.probe', 'set', true)"))
            probe = (
                await session.execute(text("SELECT current_setting('videoforge.probe', true)"))
            ).scalar_one()
        assert probe in ("", None)
        async with session_scope(sessions) as session:
            await session.execute(text("SELECT set_config('videoforge.probe', 'set', true)"))
            probe = (
                await session.execute(text("SELECT current_setting('videoforge.probe', true)"))
            ).scalar_one()
        assert probe == "set"

        # Back in the pool, the connection is transactional again: a rollback undoes.
        async def failing_writer() -> None:
            async with session_scope(sessions) as session:
                await session.execute(insert(QueueMessageRow).values(**_row()))
                await session.flush()
                raise LookupError

        with pytest.raises(LookupError):
            await failing_writer()
        assert await _count(engine) == 0
    finally:
        await engine.dispose()


async def test_read_scope_reads_on_sqlite_too(sqlite_url: str) -> None:
    from videoforge.infra.db import read_scope

    engine = create_engine(sqlite_url)
    try:
        async with session_scope(session_factory(engine)) as session:
            await session.execute(insert(QueueMessageRow).values(**_row()))
        async with read_scope(session_factory(engine)) as session:
            found = (
                await session.execute(select(func.count()).select_from(QueueMessageRow))
            ).scalar_one()
        assert found == 1
    finally:
        await engine.dispose()
