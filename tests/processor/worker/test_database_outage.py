"""A PostgreSQL outage seen by a worker: it stops receiving until the database answers
again (each receive of a message it cannot claim would bring that message closer to the
dead-letter queue), and logs the outage as one warning, not a traceback per message."""

from __future__ import annotations

import asyncio
import socket

import pytest
import structlog.testing

from videoforge.infra.queue.base import QueueMessage
from videoforge.infra.runtime import build_infra
from videoforge.messages import JobStatus

from .conftest import Stack, running_worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The outage needs the queue elsewhere than the database: SQS (moto) and PostgreSQL.
@pytest.mark.parametrize("stack_env", ["aws"], indirect=True)
async def test_a_database_outage_stops_receiving_and_costs_no_receive(stack: Stack) -> None:
    jobs = [await stack.new_job(f"originals/u1/x{i}/source") for i in range(3)]
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{_free_port()}/videoforge"
    # A long visibility timeout: a message it received and did not hand back stays away.
    broken = await build_infra(
        stack.with_settings(DATABASE_URL=unreachable, QUEUE_VISIBILITY_TIMEOUT="60")
    )
    try:
        with structlog.testing.capture_logs() as logs:
            async with running_worker(broken, receive_wait=0.2):
                await asyncio.sleep(3)
    finally:
        await broken.aclose()
    crashed = [e for e in logs if e["event"] == "message_handling_crashed"]
    assert len(crashed) == 1, crashed  # the first message, then it waited
    assert crashed[0]["log_level"] == "warning"
    assert crashed[0]["dependency"] == "database"
    assert [e for e in logs if "exc_info" in e or e["log_level"] == "error"] == []
    # Nothing was claimed, nothing went to the dead-letter queue: every message is still
    # there and visible (the one it received, handed back as it stopped waiting), two of
    # them never received.
    for job in jobs:
        fresh = await stack.job(job.id)
        assert fresh.status is JobStatus.PENDING
        assert fresh.attempts == 0
    got: list[QueueMessage] = []
    for _ in range(10):  # a receive may return fewer messages than there are
        got += await stack.infra.queues.jobs.receive(
            max_messages=10, wait_seconds=1, visibility_timeout=30
        )
        if len(got) >= len(jobs):
            break
    assert sorted(m.receive_count for m in got) == [1, 1, 2]
    assert await stack.infra.queues.jobs.dead_letters() == []
