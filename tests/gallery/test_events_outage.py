"""Job events while the gallery's database is down: the consumer stops receiving until
it answers again (one warning), so an outage does not walk the events through their
receives to the dead-letter queue, and none is lost. SQS on moto, an unreachable
PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import boto3
import structlog.testing

from videoforge.gallery.events import run_event_consumer
from videoforge.infra.db import utcnow
from videoforge.infra.queue.base import QueueMessage
from videoforge.infra.queue.sqs import ensure_sqs_queues
from videoforge.infra.runtime import build_infra
from videoforge.messages import JobEvent, JobStatus
from videoforge.settings import Settings

EVENTS = 3
#: The events queue's visibility timeout: an event that failed comes back this fast.
VISIBILITY = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_database_outage_holds_job_events_back_in_the_queue(
    tmp_path: Path, moto_endpoint: str, unique: str
) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    jobs_url, _ = await ensure_sqs_queues(sqs, f"jobs-{unique}", 5, 30)
    events_url, _ = await ensure_sqs_queues(sqs, f"events-{unique}", 10, VISIBILITY)
    settings = Settings(
        _env_file=None,
        DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{_free_port()}/videoforge",
        VIDEOFORGE_DATA_DIR=str(tmp_path / "data"),
        SQS_QUEUE_URL=jobs_url,
        SQS_EVENTS_QUEUE_URL=events_url,
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_REGION="us-east-1",
        QUEUE_VISIBILITY_TIMEOUT=VISIBILITY,  # what the consumer receives with
    )
    infra = await build_infra(settings)
    try:
        for seq in range(EVENTS):
            event = JobEvent(
                job_id=uuid.uuid4(),
                video_id=uuid.uuid4(),
                user_id="u1",
                seq=seq,
                status=JobStatus.COMPLETED,
                at=utcnow(),
            )
            await infra.queues.events.send(event.dumps())
        stop = asyncio.Event()
        with structlog.testing.capture_logs() as logs:
            consumer = asyncio.create_task(run_event_consumer(infra, stop))
            # Long enough for a failed batch to come back a few times.
            await asyncio.sleep(4 * VISIBILITY + 0.5)
            stop.set()
            await asyncio.wait_for(consumer, timeout=30)
        failed = [e for e in logs if e["event"] == "event_apply_failed"]
        assert len(failed) == 1, failed  # the first event; then it waited
        assert failed[0]["log_level"] == "warning"
        assert failed[0]["dependency"] == "database"
        assert [e for e in logs if "exc_info" in e] == []
        # Every event is still in the queue, received once at most before this.
        got: list[QueueMessage] = []
        for _ in range(10):  # a receive may return fewer messages than there are
            got += await infra.queues.events.receive(
                max_messages=10, wait_seconds=1, visibility_timeout=30
            )
            if len(got) >= EVENTS:
                break
        assert len(got) == EVENTS
        assert max(m.receive_count for m in got) <= 2
        assert await infra.queues.events.dead_letters() == []
    finally:
        await infra.aclose()
