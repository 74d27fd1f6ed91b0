"""The worker's writes to a job, in the job domain (on SQLite and PostgreSQL): every
write after the claim holds only on the run's own token, each returns the row as written
with its event, and events are published with retries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.fakes import FakeFlakyQueue

from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.queue.base import Queues
from videoforge.infra.queue.db import DatabaseQueue
from videoforge.jobs import AssetType, Job, MediaAsset, create_job, get_job, runs
from videoforge.jobs import events as job_events
from videoforge.jobs.runs import AssetRecord, ClaimOutcome
from videoforge.messages import JobEvent, JobStatus

S = JobStatus
Sessions = async_sessionmaker[AsyncSession]
STALE = 30.0


async def _job(sessions: Sessions) -> Job:
    async with session_scope(sessions) as session:
        return await create_job(
            session, user_id="u1", input_source="originals/u1/a/source", video_id=uuid.uuid4()
        )


async def _claimed(sessions: Sessions, token: str = "a" * 32, message_id: str = "m-1") -> Job:
    job = await _job(sessions)
    async with session_scope(sessions) as session:
        claim = await runs.claim(
            session, job.id, message_id=message_id, token=token, stale_after=STALE
        )
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.job is not None
    return claim.job


async def _read(sessions: Sessions, job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        return await get_job(session, job_id)


async def test_claim_outcomes(sessions: Sessions) -> None:
    async with session_scope(sessions) as session:
        missing = await runs.claim(
            session, uuid.uuid4(), message_id="m", token="x" * 32, stale_after=STALE
        )
    assert missing.outcome is ClaimOutcome.UNKNOWN_JOB
    assert missing.job is None

    job = await _claimed(sessions)
    assert job.status is S.DOWNLOADING
    assert job.attempts == 1
    assert job.claim_token == "a" * 32
    async with session_scope(sessions) as session:
        same = await runs.claim(
            session, job.id, message_id="m-1", token="b" * 32, stale_after=STALE
        )
        other = await runs.claim(
            session, job.id, message_id="m-2", token="b" * 32, stale_after=STALE
        )
    assert same.outcome is ClaimOutcome.OWNER_ALIVE
    assert other.outcome is ClaimOutcome.DUPLICATE
    assert (await _read(sessions, job.id)).claim_token == "a" * 32

    # The owner went silent: the next claim takes the job from its token.
    async with session_scope(sessions) as session:
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=STALE + 1))
        )
    async with session_scope(sessions) as session:
        taken = await runs.claim(
            session, job.id, message_id="m-1", token="c" * 32, stale_after=STALE
        )
    assert taken.outcome is ClaimOutcome.CLAIMED
    assert taken.reclaimed
    assert taken.job is not None
    assert taken.job.attempts == 2
    assert taken.job.claim_token == "c" * 32

    async with session_scope(sessions) as session:
        await runs.fail(session, job.id, token="c" * 32, code="corrupt_media", text="bad")
        final = await runs.claim(
            session, job.id, message_id="m-3", token="d" * 32, stale_after=STALE
        )
    assert final.outcome is ClaimOutcome.FINISHED


async def test_a_run_that_lost_its_claim_can_write_nothing(sessions: Sessions) -> None:
    job = await _claimed(sessions)
    before = await _read(sessions, job.id)
    stranger = "z" * 32
    async with session_scope(sessions) as session:
        assert await runs.beat(session, job.id, token=stranger) is None
        assert await runs.record_progress(session, job.id, token=stranger, progress=50) is None
        assert (
            await runs.advance(
                session, job.id, token=stranger, source=S.DOWNLOADING, target=S.PROCESSING
            )
            is None
        )
        assert await runs.fail(session, job.id, token=stranger, code="x", text="x") is None
        assert await runs.cancel(session, job.id, token=stranger) is None
        assert await runs.give_back(session, job.id, token=stranger) is None
        assert (
            await runs.complete(
                session, job.id, token=stranger, assets=[], facts={}, event_fields={}
            )
            is None
        )
    after = await _read(sessions, job.id)
    assert (after.status, after.event_seq, after.progress, after.claim_token) == (
        before.status,
        before.event_seq,
        before.progress,
        before.claim_token,
    )


async def test_each_change_carries_the_row_as_written_and_its_event(sessions: Sessions) -> None:
    job = await _claimed(sessions)
    token = job.claim_token
    assert token is not None
    # One transaction per write, as the worker makes them (a Change's job is the live
    # row of its session; its event is the snapshot published after the commit).
    async with session_scope(sessions) as session:
        beat = await runs.beat(session, job.id, token=token)
    async with session_scope(sessions) as session:
        progressed = await runs.record_progress(session, job.id, token=token, progress=140)
    async with session_scope(sessions) as session:
        moved = await runs.advance(
            session, job.id, token=token, source=S.DOWNLOADING, target=S.PROCESSING
        )
    assert beat is not None
    assert not beat.cancel_requested
    assert progressed is not None
    assert progressed.job.progress == 100
    assert progressed.event.seq == progressed.job.event_seq == job.event_seq + 1
    assert moved is not None
    assert moved.job.status is S.PROCESSING
    assert (moved.event.status, moved.event.seq) == (S.PROCESSING, job.event_seq + 2)
    assert moved.event.job_id == job.id
    assert moved.event.video_id == job.video_id


async def test_give_back_can_take_back_the_attempt_the_claim_counted(sessions: Sessions) -> None:
    job = await _claimed(sessions)
    assert job.attempts == 1
    assert job.claim_token is not None
    async with session_scope(sessions) as session:
        change = await runs.give_back(
            session,
            job.id,
            token=job.claim_token,
            error=("local_resource", "no room here"),
            uncount_attempt=True,
        )
    assert change is not None
    assert (change.job.status, change.job.attempts, change.job.claim_token) == (S.PENDING, 0, None)
    assert change.job.error_code == "local_resource"
    assert change.job.enqueued_at is not None


async def test_complete_records_facts_and_upserts_assets(sessions: Sessions) -> None:
    job = await _claimed(sessions)
    token = job.claim_token
    assert token is not None
    key = f"outputs/{job.id}/hls/master.m3u8"
    async with session_scope(sessions) as session:
        await runs.advance(session, job.id, token=token, source=S.DOWNLOADING, target=S.PROCESSING)
        await runs.advance(session, job.id, token=token, source=S.PROCESSING, target=S.UPLOADING)
        # A retried run recorded the same asset before: the upsert overwrites it.
        await runs.upsert_assets(
            session, job.id, [AssetRecord(AssetType.HLS, key, size=1, quality=None)]
        )
        done = await runs.complete(
            session,
            job.id,
            token=token,
            assets=[
                AssetRecord(AssetType.HLS, key, size=321),
                AssetRecord(AssetType.VIDEO, f"outputs/{job.id}/mp4/360p.mp4", 9, "360p"),
            ],
            facts={"duration": 2.0, "width": 320, "height": 240},
            event_fields={"duration": 2.0},
        )
    assert done is not None
    assert (done.job.status, done.job.duration, done.job.width) == (S.COMPLETED, 2.0, 320)
    assert done.event.status is S.COMPLETED
    assert done.event.duration == 2.0
    async with sessions() as session:
        rows = (
            await session.execute(
                select(MediaAsset.s3_key, MediaAsset.file_size, MediaAsset.format)
                .where(MediaAsset.job_id == job.id)
                .order_by(MediaAsset.s3_key)
            )
        ).all()
        count = await session.scalar(
            select(func.count()).select_from(MediaAsset).where(MediaAsset.job_id == job.id)
        )
    assert count == 2
    assert [tuple(r) for r in rows] == [
        (key, 321, "m3u8"),
        (f"outputs/{job.id}/mp4/360p.mp4", 9, "mp4"),
    ]


@pytest.mark.parametrize(("failures", "sent"), [(0, True), (2, True), (3, False)])
async def test_publish_retries_a_failing_queue_then_gives_up(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch, failures: int, sent: bool
) -> None:
    monkeypatch.setattr(job_events, "RETRY_PAUSE_SECONDS", 0.0)
    real = DatabaseQueue("events", sessions, max_receives=None, default_visibility=30)
    flaky = FakeFlakyQueue(real, failures=failures)
    queues = Queues(jobs=real, events=flaky)  # type: ignore[arg-type]
    job = await _job(sessions)

    event = job_events.job_event(job)
    assert await job_events.publish(queues, event) is sent
    assert flaky.attempts == min(failures + 1, job_events.PUBLISH_ATTEMPTS)
    got = await real.receive(max_messages=10, wait_seconds=0)
    assert [JobEvent.model_validate_json(m.body) for m in got] == ([event] if sent else [])
