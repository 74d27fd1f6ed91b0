"""DatabaseQueue specifics, on SQLite and PostgreSQL: OS-thread concurrency, the
dead-letter queue as a queue of its own, isolation between queue names, failures."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from videoforge.infra.db import create_engine, session_factory, session_scope
from videoforge.infra.queue.base import QueueError, ReceiptInvalid
from videoforge.infra.queue.db import DatabaseQueue, dead_letter_name
from videoforge.infra.queue.models import QueueMessageRow


def _queue(
    url: str, name: str, *, max_receives: int = 3, default_visibility: int = 30
) -> tuple[DatabaseQueue, AsyncEngine]:
    """A queue handle with its own engine (what a separate worker would have)."""
    engine = create_engine(url, pool_size=2)
    queue = DatabaseQueue(
        name,
        session_factory(engine),
        max_receives=max_receives,
        default_visibility=default_visibility,
        poll_interval=0.05,
    )
    return queue, engine


def test_two_os_threads_with_own_loops_and_engines_deliver_each_message_once(
    database_url: str,
) -> None:
    """Two threads, each with its own event loop, engine and two consumers, drain 50
    messages: each is delivered exactly once and never held by two consumers at once."""

    async def produce() -> set[str]:
        q, engine = _queue(database_url, "threads")
        try:
            return {await q.send(f"m{i}") for i in range(50)}
        finally:
            await engine.dispose()

    sent = asyncio.run(produce())
    lock = threading.Lock()
    held: set[str] = set()
    deliveries: Counter[str] = Counter()
    overlaps: list[str] = []
    errors: list[BaseException] = []

    async def thread_main() -> None:
        q, engine = _queue(database_url, "threads")
        deadline = time.monotonic() + 30

        async def consume() -> None:
            while time.monotonic() < deadline:
                with lock:
                    if len(deliveries) >= 50:
                        return
                batch = await q.receive(max_messages=3, wait_seconds=0.3)
                with lock:
                    for msg in batch:
                        if msg.message_id in held:
                            overlaps.append(msg.message_id)
                        held.add(msg.message_id)
                        deliveries[msg.message_id] += 1
                await asyncio.sleep(0.005)
                for msg in batch:
                    with lock:
                        held.discard(msg.message_id)
                    await q.delete(msg.receipt)

        try:
            await asyncio.gather(consume(), consume())
        finally:
            await engine.dispose()

    def run_thread() -> None:
        try:
            asyncio.run(thread_main())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run_thread) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert overlaps == []
    assert set(deliveries) == sent
    assert all(n == 1 for n in deliveries.values()), deliveries.most_common(3)


async def test_dead_letters_are_a_queue_of_their_own(database_url: str) -> None:
    q, engine = _queue(database_url, "work", max_receives=1, default_visibility=1)
    dlq = DatabaseQueue(
        dead_letter_name("work"),
        session_factory(engine),
        max_receives=None,
        default_visibility=1,
    )
    try:
        message_id = await q.send("bad")
        [msg] = await q.receive(wait_seconds=1)
        await q.change_visibility(msg.receipt, 0)
        assert await q.receive(wait_seconds=0) == []  # second receive dead-letters it
        assert await dlq.depth() == 1

        [dead] = await q.dead_letters()
        assert (dead.message_id, dead.body, dead.receive_count) == (message_id, "bad", 1)
        assert await q.dead_letters() == [dead]  # peeking does not claim

        # The holder of the last delivery lost it to the DLQ.
        with pytest.raises(ReceiptInvalid):
            await q.change_visibility(msg.receipt, 5)

        # An operator drains the DLQ with the receipt dead_letters() gave.
        await dlq.delete(dead.receipt)
        assert await q.dead_letters() == []
        assert await dlq.depth() == 0
    finally:
        await engine.dispose()


async def test_queue_names_are_isolated(database_url: str) -> None:
    jobs, engine = _queue(database_url, "jobs")
    events = DatabaseQueue(
        "events",
        session_factory(engine),
        max_receives=3,
        default_visibility=30,
    )
    try:
        await jobs.send("a job")
        assert await events.receive(wait_seconds=0) == []
        assert await events.depth() == 0
        [msg] = await jobs.receive(wait_seconds=0)
        await events.delete(msg.receipt)  # another queue's receipt deletes nothing
        with pytest.raises(ReceiptInvalid):
            await events.change_visibility(msg.receipt, 0)
        assert await jobs.in_flight() == 1
        await jobs.delete(msg.receipt)
        assert await jobs.in_flight() == 0
    finally:
        await engine.dispose()


async def test_malformed_receipts(sqlite_url: str) -> None:
    q, engine = _queue(sqlite_url, "jobs")
    try:
        for receipt in ("", "garbage", "12", "x.abc", ".abc", "12."):
            with pytest.raises(ReceiptInvalid):
                await q.change_visibility(receipt, 1)
            await q.delete(receipt)  # a no-op, never an error
    finally:
        await engine.dispose()


async def test_each_receive_is_one_row_update(sqlite_url: str) -> None:
    """What is stored: delivered rows carry the count and token; the table holds one
    row per message (dead-lettering renames, never copies)."""
    q, engine = _queue(sqlite_url, "jobs", max_receives=1, default_visibility=1)
    try:
        await q.send("x")
        [msg] = await q.receive(wait_seconds=0)
        await q.change_visibility(msg.receipt, 0)
        await q.receive(wait_seconds=0)
        async with session_scope(session_factory(engine)) as session:
            rows = (await session.execute(select(QueueMessageRow))).scalars().all()
            total = (
                await session.execute(select(func.count()).select_from(QueueMessageRow))
            ).scalar_one()
        assert total == 1
        assert rows[0].queue == "jobs-dlq"
        assert rows[0].receive_count == 1
        assert rows[0].receipt_token is not None
        assert rows[0].receipt_token not in msg.receipt  # a fresh token on every claim
    finally:
        await engine.dispose()


async def test_database_down_is_a_queue_error() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    q, engine = _queue(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nope", "jobs")
    try:
        with pytest.raises(QueueError):
            await q.send("x")
        with pytest.raises(QueueError):
            await q.receive(wait_seconds=0)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("", {}),
        ("bad name", {}),
        ("x" * 77, {}),
        ("ok", {"max_receives": 0}),
        ("ok", {"default_visibility": 43201}),
        ("ok", {"poll_interval": 0}),
    ],
)
async def test_constructor_validates(sqlite_url: str, name: str, kwargs: dict[str, Any]) -> None:
    engine = create_engine(sqlite_url)
    options: dict[str, Any] = {"max_receives": 3, "default_visibility": 30}
    options.update(kwargs)
    try:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            DatabaseQueue(name, session_factory(engine), **options)
    finally:
        await engine.dispose()
