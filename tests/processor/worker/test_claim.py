"""The claim, against the real database: one winner; duplicates and stale deliveries are
no-ops; a dead worker's job is reclaimed; a live owner's job is left alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import update

from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.queue.base import QueueMessage
from videoforge.jobs import Job
from videoforge.jobs.runs import ClaimOutcome
from videoforge.messages import JobMessage, JobStatus
from videoforge.processor.policy import retry_backoff
from videoforge.processor.worker import Worker

from .conftest import VISIBILITY, Stack

S = JobStatus


def _message(job_id: uuid.UUID, message_id: str | None = None) -> QueueMessage:
    return QueueMessage(
        message_id=message_id or uuid.uuid4().hex,
        body=JobMessage(job_id=job_id).dumps(),
        receipt="unused",
        receive_count=1,
    )


async def test_concurrent_claims_have_one_winner(stack: Stack) -> None:
    job = await stack.new_job("originals/u1/x/source", send=False)
    worker = Worker(stack.infra)
    outcomes = await asyncio.gather(
        *(worker.claim(job.id, _message(job.id), uuid.uuid4().hex) for _ in range(4))
    )
    kinds = sorted(str(o) for o, _ in outcomes)
    assert kinds.count(str(ClaimOutcome.CLAIMED)) == 1
    assert kinds.count(str(ClaimOutcome.DUPLICATE)) == 3
    claimed = await stack.job(job.id)
    assert claimed.status is S.DOWNLOADING
    assert claimed.attempts == 1
    assert claimed.event_seq == 1


async def test_redelivery_outcomes(stack: Stack) -> None:
    worker = Worker(stack.infra)
    job = await stack.new_job("originals/u1/x/source", send=False)
    first = _message(job.id, "m-1")
    outcome, _ = await worker.claim(job.id, first, "a" * 32)
    assert outcome is ClaimOutcome.CLAIMED

    # The same message again while its owner beats: leave it to the owner.
    outcome, _ = await worker.claim(job.id, _message(job.id, "m-1"), "b" * 32)
    assert outcome is ClaimOutcome.OWNER_ALIVE
    # Another message for the same running job: a duplicate.
    outcome, _ = await worker.claim(job.id, _message(job.id, "m-2"), "b" * 32)
    assert outcome is ClaimOutcome.DUPLICATE
    assert (await stack.job(job.id)).claim_token == "a" * 32

    # The owner stops beating for longer than the visibility timeout: it is dead, and the
    # next delivery reclaims the job on a new token.
    async with session_scope(stack.infra.sessions) as session:
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=VISIBILITY + 1))
        )
    outcome, _ = await worker.claim(job.id, _message(job.id, "m-1"), "c" * 32)
    assert outcome is ClaimOutcome.CLAIMED
    reclaimed = await stack.job(job.id)
    assert reclaimed.status is S.DOWNLOADING
    assert reclaimed.claim_token == "c" * 32
    assert reclaimed.attempts == 2
    assert reclaimed.event_seq == 3  # reset to PENDING + claim, in one transaction

    # Final jobs and unknown jobs.
    async with session_scope(stack.infra.sessions) as session:
        await session.execute(update(Job).where(Job.id == job.id).values(status=S.COMPLETED))
    outcome, _ = await worker.claim(job.id, _message(job.id), "d" * 32)
    assert outcome is ClaimOutcome.FINISHED
    missing = uuid.uuid4()
    outcome, _ = await worker.claim(missing, _message(missing), "d" * 32)
    assert outcome is ClaimOutcome.UNKNOWN_JOB


def test_retry_backoff_grows_and_is_capped() -> None:
    assert [retry_backoff(n, base=5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_backoff(30, base=5) == 900
    assert retry_backoff(1, base=0.1) == 1
