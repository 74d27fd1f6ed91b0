"""The state machine and its conditional updates, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.infra.db import session_scope
from videoforge.jobs import InvalidTransition, Job, can_move, create_job, get_job, transition
from videoforge.jobs.transitions import ALLOWED_TRANSITIONS, set_progress
from videoforge.messages import FINAL_JOB_STATUSES, JobStatus

S = JobStatus
EXPECTED_MOVES = {
    (S.PENDING, S.DOWNLOADING),
    (S.DOWNLOADING, S.PROCESSING),
    (S.PROCESSING, S.UPLOADING),
    (S.UPLOADING, S.COMPLETED),
    *(
        (s, t)
        for s in (S.PENDING, S.DOWNLOADING, S.PROCESSING, S.UPLOADING)
        for t in (S.FAILED, S.CANCELLED)
    ),
    *((s, S.PENDING) for s in (S.DOWNLOADING, S.PROCESSING, S.UPLOADING)),
    (S.FAILED, S.PENDING),
    (S.CANCELLED, S.PENDING),
}


def test_table_is_exactly_the_documented_machine() -> None:
    allowed = {(s, t) for s, t in itertools.product(S, S) if can_move(s, t)}
    assert allowed == EXPECTED_MOVES
    assert ALLOWED_TRANSITIONS[S.COMPLETED] == frozenset()
    assert not can_move(S.PENDING, S.COMPLETED)
    assert not can_move(S.COMPLETED, S.PENDING)


async def _new_job(sessions: async_sessionmaker[AsyncSession]) -> Job:
    async with session_scope(sessions) as session:
        return await create_job(session, user_id="u1", input_source="originals/u1/a/source")


async def test_happy_path_bumps_event_seq_and_stamps(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job = await _new_job(sessions)
    assert job.event_seq == 0
    path = [S.DOWNLOADING, S.PROCESSING, S.UPLOADING, S.COMPLETED]
    current = S.PENDING
    seqs = []
    for target in path:
        async with session_scope(sessions) as session:
            seq = await transition(session, job.id, expected=current, target=target)
        assert seq is not None
        seqs.append(seq)
        current = target
    assert seqs == [1, 2, 3, 4]
    async with session_scope(sessions) as session:
        done = await get_job(session, job.id)
    assert done.status is S.COMPLETED
    assert done.event_seq == 4
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s, t in itertools.product(S, S) if (s, t) not in EXPECTED_MOVES],
)
async def test_forbidden_moves_raise(source: JobStatus, target: JobStatus) -> None:
    # Raised before any SQL runs: a forbidden move is a programming error.
    with pytest.raises(InvalidTransition):
        await transition(None, None, expected=source, target=target)  # type: ignore[arg-type]


async def test_conditional_update_loses_when_state_moved(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job = await _new_job(sessions)
    async with session_scope(sessions) as session:
        assert await transition(session, job.id, expected=S.PENDING, target=S.DOWNLOADING)
    # A second claimer still believing the job is PENDING loses, and nothing changes.
    async with session_scope(sessions) as session:
        assert await transition(session, job.id, expected=S.PENDING, target=S.DOWNLOADING) is None
        assert await transition(session, job.id, expected=S.PENDING, target=S.CANCELLED) is None
    async with session_scope(sessions) as session:
        after = await get_job(session, job.id)
    assert after.status is S.DOWNLOADING
    assert after.event_seq == 1


async def test_claim_token_must_match(sessions: async_sessionmaker[AsyncSession]) -> None:
    job = await _new_job(sessions)
    async with session_scope(sessions) as session:
        seq = await transition(
            session,
            job.id,
            expected=S.PENDING,
            target=S.DOWNLOADING,
            claim_token=None,
            values={"claim_token": "a" * 32},
        )
    assert seq == 1
    async with session_scope(sessions) as session:
        lost = await transition(
            session, job.id, expected=S.DOWNLOADING, target=S.PROCESSING, claim_token="b" * 32
        )
        assert lost is None
        assert await set_progress(session, job.id, claim_token="b" * 32, progress=50) is None
        won = await transition(
            session, job.id, expected=S.DOWNLOADING, target=S.PROCESSING, claim_token="a" * 32
        )
        assert won == 2
        assert await set_progress(session, job.id, claim_token="a" * 32, progress=150) == 3
    async with session_scope(sessions) as session:
        after = await get_job(session, job.id)
    assert after.status is S.PROCESSING
    assert after.progress == 100  # clamped
    assert after.event_seq == 3


async def test_final_states_are_final(sessions: async_sessionmaker[AsyncSession]) -> None:
    for final in FINAL_JOB_STATUSES - {S.COMPLETED}:
        job = await _new_job(sessions)
        async with session_scope(sessions) as session:
            assert await transition(session, job.id, expected=S.PENDING, target=final)
        async with session_scope(sessions) as session:
            # Nothing but a retry leaves FAILED / CANCELLED.
            assert (
                await transition(session, job.id, expected=S.PENDING, target=S.DOWNLOADING) is None
            )
            assert (await get_job(session, job.id)).status is final
