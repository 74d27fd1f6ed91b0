"""The queue contract, run against every backend: DatabaseQueue on SQLite and on
PostgreSQL, and SqsQueue on a real SQS-compatible server (moto) over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from videoforge.infra.queue.base import Queue, QueueMessage, ReceiptInvalid

# make_queue(max_receives=..., visibility=...) -> QueueHarness (see conftest.py)
MakeQueue = Callable[..., Awaitable[Any]]


async def test_send_receive_delete(make_queue: MakeQueue) -> None:
    q = await (await make_queue()).open()
    assert isinstance(q, Queue)
    message_id = await q.send('{"job_id": 1}')
    assert await q.depth() == 1

    [msg] = await q.receive(wait_seconds=2)
    assert msg.message_id == message_id
    assert msg.body == '{"job_id": 1}'
    assert msg.receive_count == 1
    assert msg.receipt
    assert await q.depth() == 0  # in flight is not "visible"

    await q.delete(msg.receipt)
    await asyncio.sleep(1.2)  # past the visibility timeout: a deleted message stays gone
    assert await q.receive(wait_seconds=0) == []
    assert await q.depth() == 0


async def test_long_poll_returns_early_when_a_message_arrives(make_queue: MakeQueue) -> None:
    harness = await make_queue()
    consumer, producer = await harness.open(), await harness.open()

    started = time.monotonic()
    waiting = asyncio.create_task(consumer.receive(wait_seconds=10))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # really waiting, not returning empty at once
    await producer.send("late")
    messages = await asyncio.wait_for(waiting, timeout=10)
    elapsed = time.monotonic() - started

    assert [m.body for m in messages] == ["late"]
    assert elapsed < 3, f"long poll took {elapsed:.2f}s; it should return soon after the send"


async def test_long_poll_waits_then_returns_empty(make_queue: MakeQueue) -> None:
    q = await (await make_queue()).open()
    started = time.monotonic()
    assert await q.receive(wait_seconds=1) == []
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3


async def test_in_flight_message_is_invisible_then_redelivered(make_queue: MakeQueue) -> None:
    q = await (await make_queue(visibility=2)).open()
    await q.send("work")
    [first] = await q.receive(wait_seconds=2)

    assert await q.receive(wait_seconds=0.3) == []  # hidden while in flight

    [again] = await q.receive(wait_seconds=5)  # visible again after ~2 s
    assert again.message_id == first.message_id
    assert again.receive_count == first.receive_count + 1 == 2
    assert again.receipt != first.receipt


async def test_change_visibility_holds_and_releases(make_queue: MakeQueue) -> None:
    q = await (await make_queue(visibility=1)).open()
    await q.send("long job")
    [msg] = await q.receive(wait_seconds=2)

    await q.change_visibility(msg.receipt, 3)  # heartbeat: keep it ours
    await asyncio.sleep(1.5)  # past the original 1 s timeout
    assert await q.receive(wait_seconds=0) == []

    await q.change_visibility(msg.receipt, 0)  # give it back at once
    [again] = await q.receive(wait_seconds=2)
    assert again.message_id == msg.message_id
    assert again.receive_count == 2


async def test_receipt_of_deleted_message_cannot_extend(make_queue: MakeQueue) -> None:
    q = await (await make_queue()).open()
    await q.send("x")
    [msg] = await q.receive(wait_seconds=2)
    await q.delete(msg.receipt)
    with pytest.raises(ReceiptInvalid):
        await q.change_visibility(msg.receipt, 10)
    await q.delete(msg.receipt)  # deleting twice is harmless


# Database backends only: moto accepts every receipt a message ever had
# (``Message.had_receipt_handle``), unlike SQS, which invalidates the earlier ones. The
# SQS mapping of the error to ReceiptInvalid is covered by the deleted-message test.
@pytest.mark.parametrize("queue_backend", ["sqlite", "postgres"])
async def test_stale_receipt_cannot_delete_or_extend_after_redelivery(
    make_queue: MakeQueue,
) -> None:
    q = await (await make_queue(visibility=1)).open()
    await q.send("contended")
    [old] = await q.receive(wait_seconds=2)
    [new] = await q.receive(wait_seconds=3)  # the first consumer was too slow
    assert new.receive_count == 2

    with pytest.raises(ReceiptInvalid):
        await q.change_visibility(old.receipt, 30)
    await q.delete(old.receipt)  # no-op: the new holder still owns it

    await q.change_visibility(new.receipt, 0)
    [third] = await q.receive(wait_seconds=2)
    assert third.message_id == new.message_id
    assert third.receive_count == 3


async def test_message_received_max_times_lands_in_dead_letter_queue(
    make_queue: MakeQueue,
) -> None:
    q = await (await make_queue(max_receives=2, visibility=1)).open()
    await q.send("poison")
    counts: list[int] = []
    for _ in range(2):
        [msg] = await q.receive(wait_seconds=2)
        assert msg.body == "poison"
        counts.append(msg.receive_count)
        await q.change_visibility(msg.receipt, 0)  # "failed": back to the queue
        await asyncio.sleep(0.05)
    assert counts == [1, 2]
    await q.send("fine")

    # The third receive moves "poison" to the DLQ instead of delivering it.
    delivered = await q.receive(wait_seconds=2)
    assert [m.body for m in delivered] == ["fine"]
    await q.delete(delivered[0].receipt)

    dead = await q.dead_letters()
    assert [m.body for m in dead] == ["poison"]
    assert dead[0].receive_count >= 2
    assert await q.receive(wait_seconds=0.5) == []
    assert await q.depth() == 0


async def test_delay(make_queue: MakeQueue) -> None:
    q = await (await make_queue()).open()
    started = time.monotonic()
    await q.send("later", delay_seconds=2)
    assert await q.receive(wait_seconds=0) == []
    assert await q.depth() == 0  # delayed messages are not visible yet
    [msg] = await q.receive(wait_seconds=5)
    assert msg.body == "later"
    assert time.monotonic() - started >= 1.9


async def test_receive_batches_at_most_max_messages(make_queue: MakeQueue) -> None:
    q = await (await make_queue(visibility=30)).open()
    sent = {await q.send(f"m{i}") for i in range(5)}
    first = await q.receive(max_messages=3, wait_seconds=2)
    assert len(first) == 3
    second = await q.receive(max_messages=3, wait_seconds=2)
    assert len(second) == 2
    assert {m.message_id for m in first + second} == sent


async def test_rejects_values_sqs_would_reject(make_queue: MakeQueue) -> None:
    q = await (await make_queue()).open()
    with pytest.raises(ValueError, match="max_messages"):
        await q.receive(max_messages=11, wait_seconds=0)
    with pytest.raises(ValueError, match="delay_seconds"):
        await q.send("x", delay_seconds=901)
    with pytest.raises(ValueError, match="larger than"):
        await q.send("x" * (256 * 1024 + 1))
    with pytest.raises(ValueError, match="visibility"):
        await q.receive(wait_seconds=0, visibility_timeout=-1)


async def test_concurrent_consumers_never_hold_the_same_message(make_queue: MakeQueue) -> None:
    """Three consumers, each with its own connection, drain 50 messages: every message
    is delivered; on the database queues exactly once, and no two consumers ever hold
    one at the same time."""
    harness = await make_queue(visibility=60)
    producer = await harness.open()
    sent = set(await asyncio.gather(*(producer.send(f"job-{i}") for i in range(50))))
    assert len(sent) == 50

    held: set[str] = set()
    deliveries: Counter[str] = Counter()
    overlaps: list[str] = []

    async def consume(q: Queue) -> None:
        deadline = time.monotonic() + 30
        while len(deliveries) < 50 and time.monotonic() < deadline:
            batch: list[QueueMessage] = await q.receive(max_messages=4, wait_seconds=0.5)
            for msg in batch:
                if msg.message_id in held:
                    overlaps.append(msg.message_id)
                held.add(msg.message_id)
                deliveries[msg.message_id] += 1
            await asyncio.sleep(0.01)  # "work" while holding the batch
            for msg in batch:
                held.discard(msg.message_id)
                await q.delete(msg.receipt)

    consumers = [await harness.open() for _ in range(3)]
    await asyncio.gather(*(consume(q) for q in consumers))

    assert set(deliveries) == sent  # nothing lost, on every backend
    if not harness.is_database:
        # SQS standard queues deliver at least once: two concurrent receives may both
        # get a message, rarely on AWS and now and then on moto, whose receive is not
        # atomic across its server's threads (getmoto/moto#519; seen in a CI run). The
        # worker is built for that (claims and idempotent completion); the database
        # queues below are the ones that promise one holder at a time.
        return
    assert overlaps == []
    assert all(n == 1 for n in deliveries.values()), deliveries.most_common(3)
    assert await producer.depth() == 0
