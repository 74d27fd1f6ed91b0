"""Job service rules on SQLite and PostgreSQL: idempotent creation, cancel, retry, listing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.infra.db import session_scope
from videoforge.infra.errors import BadRequest, Conflict, NotFound
from videoforge.jobs import (
    Job,
    create_job,
    get_job,
    list_jobs,
    request_cancel,
    retry_job,
    transition,
)
from videoforge.jobs.events import job_event
from videoforge.messages import JobStatus

S = JobStatus
SRC = "originals/u1/abc/source"


async def _count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Job))).scalar_one())


async def test_create_job_defaults(sessions: async_sessionmaker[AsyncSession]) -> None:
    video = uuid.uuid4()
    async with session_scope(sessions) as session:
        job = await create_job(session, user_id="u1", input_source=SRC, video_id=video)
    async with sessions() as session:
        stored = await get_job(session, job.id)
    assert stored.status is S.PENDING
    assert stored.video_id == video
    assert stored.output_format == "hls"
    assert (stored.progress, stored.attempts, stored.event_seq) == (0, 0, 0)
    assert stored.cancel_requested is False
    assert stored.enqueued_at is not None
    assert stored.enqueued_at.tzinfo is not None


async def test_create_job_is_idempotent_per_user(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessions) as session:
        first = await create_job(session, user_id="u1", input_source=SRC, idempotency_key="k1")
    async with session_scope(sessions) as session:
        again = await create_job(session, user_id="u1", input_source=SRC, idempotency_key="k1")
    assert again.id == first.id
    # Same key, another user: a different job.
    async with session_scope(sessions) as session:
        other = await create_job(session, user_id="u2", input_source=SRC, idempotency_key="k1")
    assert other.id != first.id
    # No key: always a new job.
    async with session_scope(sessions) as session:
        await create_job(session, user_id="u1", input_source=SRC)
        await create_job(session, user_id="u1", input_source=SRC)
    assert await _count(sessions) == 4
    # The key reused for another source is refused.
    with pytest.raises(Conflict) as err:
        async with session_scope(sessions) as session:
            await create_job(
                session, user_id="u1", input_source="originals/u1/x/source", idempotency_key="k1"
            )
    assert err.value.code == "idempotency_key_reused"


async def test_concurrent_creates_with_one_key_make_one_job(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def create() -> uuid.UUID:
        async with session_scope(sessions) as session:
            job = await create_job(session, user_id="u1", input_source=SRC, idempotency_key="race")
            return job.id

    ids = await asyncio.gather(*(create() for _ in range(4)))
    assert len(set(ids)) == 1
    assert await _count(sessions) == 1


@pytest.mark.parametrize(
    "source",
    [
        "",
        "/etc/passwd",
        "originals/../x",
        "a//b",
        "file:///etc/passwd",
        "a\\b",
        "ftp://x/y",
        "a\x00b",
        "x" * 3000,
    ],
)
async def test_create_job_rejects_bad_sources(
    sessions: async_sessionmaker[AsyncSession], source: str
) -> None:
    with pytest.raises(BadRequest) as err:
        async with session_scope(sessions) as session:
            await create_job(session, user_id="u1", input_source=source)
    assert err.value.code == "invalid_input_source"
    assert await _count(sessions) == 0


async def test_get_job_hides_other_users_jobs(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as session:
        job = await create_job(session, user_id="u1", input_source="https://example.com/v.mp4")
    async with sessions() as session:
        assert (await get_job(session, job.id, user_id="u1")).id == job.id
        with pytest.raises(NotFound):
            await get_job(session, job.id, user_id="u2")
        with pytest.raises(NotFound) as err:
            await get_job(session, uuid.uuid4())
    assert err.value.code == "job_not_found"


async def test_cancel_pending_is_immediate(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as session:
        job = await create_job(session, user_id="u1", input_source=SRC)
    async with session_scope(sessions) as session:
        cancelled = await request_cancel(session, job.id)
    assert cancelled.status is S.CANCELLED
    assert cancelled.event_seq == 1
    assert cancelled.finished_at is not None
    event = job_event(cancelled)
    assert (event.status, event.seq, event.user_id) == (S.CANCELLED, 1, "u1")
    # Cancelling again is harmless and changes nothing.
    async with session_scope(sessions) as session:
        again = await request_cancel(session, job.id)
    assert again.status is S.CANCELLED
    assert again.event_seq == 1


async def test_cancel_running_sets_the_flag(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as session:
        job = await create_job(session, user_id="u1", input_source=SRC)
        await transition(session, job.id, expected=S.PENDING, target=S.DOWNLOADING)
        await transition(session, job.id, expected=S.DOWNLOADING, target=S.PROCESSING)
    async with session_scope(sessions) as session:
        flagged = await request_cancel(session, job.id)
    # The worker owns the move to CANCELLED; the status is untouched here.
    assert flagged.status is S.PROCESSING
    assert flagged.cancel_requested is True


async def test_cancel_finished_job_conflicts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as session:
        job = await create_job(session, user_id="u1", input_source=SRC)
        await transition(session, job.id, expected=S.PENDING, target=S.FAILED)
    with pytest.raises(Conflict) as err:
        async with session_scope(sessions) as session:
            await request_cancel(session, job.id)
    assert err.value.code == "job_not_cancellable"


async def test_retry_rules(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as session:
        job = await create_job(session, user_id="u1", input_source=SRC)
    with pytest.raises(Conflict) as err:
        async with session_scope(sessions) as session:
            await retry_job(session, job.id)
    assert err.value.code == "job_not_retryable"

    async with session_scope(sessions) as session:
        await transition(
            session,
            job.id,
            expected=S.PENDING,
            target=S.DOWNLOADING,
            values={"attempts": 2, "claim_token": "t" * 32},
        )
        await transition(
            session,
            job.id,
            expected=S.DOWNLOADING,
            target=S.FAILED,
            values={"error_code": "gave_up", "error_text": "storage unreachable"},
        )
    async with session_scope(sessions) as session:
        retried = await retry_job(session, job.id)
    assert retried.status is S.PENDING
    assert retried.attempts == 2  # kept
    assert (retried.error_code, retried.error_text, retried.claim_token) == (None, None, None)
    assert retried.event_seq == 3
    assert retried.finished_at is None

    async with session_scope(sessions) as session:
        await request_cancel(session, job.id)
    async with session_scope(sessions) as session:
        assert (await retry_job(session, job.id)).status is S.PENDING

    async with session_scope(sessions) as session:
        for a, b in [
            (S.PENDING, S.DOWNLOADING),
            (S.DOWNLOADING, S.PROCESSING),
            (S.PROCESSING, S.UPLOADING),
            (S.UPLOADING, S.COMPLETED),
        ]:
            await transition(session, job.id, expected=a, target=b)
    with pytest.raises(Conflict):
        async with session_scope(sessions) as session:
            await retry_job(session, job.id)


async def test_list_jobs_newest_first_with_cursor(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = []
    for i in range(5):
        async with session_scope(sessions) as session:
            made.append((await create_job(session, user_id="u1", input_source=f"k/{i}")).id)
    async with session_scope(sessions) as session:
        await create_job(session, user_id="someone-else", input_source="k/x")

    seen: list[uuid.UUID] = []
    cursor = None
    async with sessions() as session:
        for _ in range(3):
            page = await list_jobs(session, "u1", limit=2, cursor=cursor)
            seen += [j.id for j in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == list(reversed(made))
    assert cursor is None
    async with sessions() as session:
        with pytest.raises(BadRequest):
            await list_jobs(session, "u1", cursor="!!not-a-cursor")
