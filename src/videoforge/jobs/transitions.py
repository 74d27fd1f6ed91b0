"""The one place a job's status changes.

:data:`ALLOWED_TRANSITIONS` is the whole state machine::

    PENDING -> DOWNLOADING -> PROCESSING -> UPLOADING -> COMPLETED
    any non-final -> FAILED | CANCELLED
    DOWNLOADING | PROCESSING | UPLOADING -> PENDING   (worker gives the job back: transient
                                                       failure, shutdown, dead worker reclaimed)
    FAILED | CANCELLED -> PENDING                      (retry, by the gateway)

:func:`transition` performs a move as one conditional ``UPDATE ... WHERE id = ? AND
status IN (expected) [AND claim_token = ?]`` and tells the caller whether it won, so two
workers (or a worker and a cancelling user) can never both believe they made a move.
Every won move bumps ``event_seq``, which becomes the ``seq`` of the job's event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.infra.db import utcnow
from videoforge.jobs.models import Job
from videoforge.messages import JobStatus

S = JobStatus
RUNNING_STATUSES: Final = frozenset({S.DOWNLOADING, S.PROCESSING, S.UPLOADING})
NON_FINAL_STATUSES: Final = frozenset({S.PENDING, *RUNNING_STATUSES})

ALLOWED_TRANSITIONS: Final[Mapping[JobStatus, frozenset[JobStatus]]] = {
    S.PENDING: frozenset({S.DOWNLOADING, S.FAILED, S.CANCELLED}),
    S.DOWNLOADING: frozenset({S.PROCESSING, S.PENDING, S.FAILED, S.CANCELLED}),
    S.PROCESSING: frozenset({S.UPLOADING, S.PENDING, S.FAILED, S.CANCELLED}),
    S.UPLOADING: frozenset({S.COMPLETED, S.PENDING, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
}

_UNSET: Final = object()


class InvalidTransition(ValueError):
    """A move the state machine does not allow (a programming error, not a lost race)."""


def can_move(source: JobStatus, target: JobStatus) -> bool:
    """Whether ``source -> target`` is in the state machine."""
    return target in ALLOWED_TRANSITIONS[source]


def _stamps(target: JobStatus) -> dict[str, Any]:
    now = utcnow()
    if target is S.DOWNLOADING:
        return {"started_at": now, "finished_at": None, "heartbeat_at": now}
    if target.is_final:
        return {"finished_at": now}
    if target is S.PENDING:
        return {"finished_at": None, "heartbeat_at": None}
    return {}


async def transition(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    expected: JobStatus | Iterable[JobStatus],
    target: JobStatus,
    claim_token: str | object | None = _UNSET,
    values: Mapping[str, Any] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> int | None:
    """Move ``job_id`` from one of ``expected`` to ``target`` if it is still there.

    ``claim_token`` (when given, ``None`` included) is also required to match, which is how
    a worker proves it still owns the job. ``values`` are further columns to set in the
    same statement, ``where`` further conditions it must meet. Returns the job's new
    ``event_seq`` when this call won the move, or ``None`` when the row was not in an
    expected state (someone else moved it first).
    Raises :class:`InvalidTransition` for a move the state machine forbids.

    Only flushes: the caller's ``session_scope`` commits.
    """
    sources = frozenset({expected} if isinstance(expected, JobStatus) else expected)
    if not sources:
        raise InvalidTransition("no expected status given")
    for source in sources:
        if not can_move(source, target):
            raise InvalidTransition(f"{source} -> {target} is not an allowed job transition")
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(sorted(sources)), *where)
        .values(
            status=target,
            event_seq=Job.event_seq + 1,
            updated_at=utcnow(),
            **_stamps(target),
            **(dict(values) if values else {}),
        )
        .returning(Job.event_seq)
        .execution_options(synchronize_session=False)
    )
    if claim_token is not _UNSET:
        stmt = stmt.where(
            Job.claim_token.is_(None) if claim_token is None else Job.claim_token == claim_token
        )
    row = (await session.execute(stmt)).first()
    return None if row is None else int(row[0])


async def set_progress(
    session: AsyncSession, job_id: uuid.UUID, *, claim_token: str, progress: int
) -> int | None:
    """Record progress of a running job owned by ``claim_token``; bumps ``event_seq``.

    Not a status change, but an event all the same (the gallery and the live view show
    it). Returns the new ``event_seq``, or ``None`` when the claim was lost.
    """
    stmt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_(sorted(RUNNING_STATUSES)),
            Job.claim_token == claim_token,
        )
        .values(
            progress=max(0, min(100, int(progress))),
            event_seq=Job.event_seq + 1,
            updated_at=utcnow(),
            heartbeat_at=utcnow(),
        )
        .returning(Job.event_seq)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else int(row[0])


__all__ = [
    "ALLOWED_TRANSITIONS",
    "NON_FINAL_STATUSES",
    "RUNNING_STATUSES",
    "InvalidTransition",
    "can_move",
    "set_progress",
    "transition",
]
