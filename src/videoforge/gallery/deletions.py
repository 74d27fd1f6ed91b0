"""Storage deletes that cannot be lost: an outbox in the gallery's database.

Whatever makes objects unreachable (deleting a video, sweeping an abandoned upload)
writes one :class:`GalleryPendingDeletion` row per key or prefix in the same
transaction. Right after the commit the caller carries them out and removes the rows.
If storage fails then, the rows stay, and :func:`sweep_deletions` retries them with
backoff until they succeed. Deleting is idempotent (a missing key is not an error), so
a retry after a delete that did happen but was not recorded is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.gallery.models import GalleryPendingDeletion, GalleryVideo
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.base import Storage, StorageError
from videoforge.infra.storage.keys import job_of_output_key

log = structlog.get_logger("videoforge.gallery.deletions")

#: The caller makes the first attempt; the sweep leaves a row alone until then.
FIRST_RETRY = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
BATCH = 200


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failed ones: 5 min doubling, ≤ 6 h."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 16)), MAX_BACKOFF)


async def schedule(
    session: AsyncSession,
    *,
    reason: str,
    keys: Iterable[str] = (),
    prefixes: Iterable[str] = (),
    not_before: datetime | None = None,
) -> list[int]:
    """Record deletes in the caller's transaction; returns the row ids to carry out.

    With ``not_before`` the caller does not carry them out: the sweep does, once that
    time has passed (a delete that only makes sense later, e.g. after URLs expire).
    """
    due = not_before or utcnow() + FIRST_RETRY
    rows = [
        GalleryPendingDeletion(
            target=target, is_prefix=is_prefix, reason=reason, attempts=0, next_attempt_at=due
        )
        for target, is_prefix in [(k, False) for k in keys] + [(p, True) for p in prefixes]
    ]
    session.add_all(rows)
    await session.flush()
    return [row.id for row in rows]


async def cancel(session: AsyncSession, ids: Sequence[int]) -> None:
    """Drop scheduled deletes (in the caller's transaction): what they were to delete
    became reachable after all."""
    if ids:
        await session.execute(
            delete(GalleryPendingDeletion).where(GalleryPendingDeletion.id.in_(list(ids)))
        )


async def carry_out(
    sessions: async_sessionmaker[AsyncSession], storage: Storage, ids: Sequence[int]
) -> int:
    """Delete what rows ``ids`` name; returns how many are done. Never raises for a
    storage failure: the row records it and stays for the sweep."""
    done = 0
    for row_id in ids:
        async with sessions() as session:
            row = await session.get(GalleryPendingDeletion, row_id)
            # Only deleting its video deletes an original, and that removes the video
            # row in the transaction that scheduled the delete. A row that names the
            # original of a video that exists is stale (e.g. a failed confirm's
            # clean-up, after a later confirm of the same upload succeeded).
            owned = (
                row is not None
                and not row.is_prefix
                and (
                    await session.execute(
                        select(GalleryVideo.id).where(GalleryVideo.s3_key == row.target).limit(1)
                    )
                ).first()
                is not None
            )
            revived = row is not None and await _job_running_again(session, row)
        if row is None:
            done += 1  # carried out meanwhile (by the sweep or the caller)
            continue
        if revived:
            # A failed or cancelled job's outputs, and the job was retried since (under
            # the same id): what is under its prefix now is the new attempt's.
            log.info("storage_delete_skipped_retried_job", target=row.target)
            async with session_scope(sessions) as session:
                await session.execute(
                    delete(GalleryPendingDeletion).where(GalleryPendingDeletion.id == row_id)
                )
            done += 1
            continue
        if owned:
            log.warning("storage_delete_skipped_original", target=row.target, reason=row.reason)
            async with session_scope(sessions) as session:
                await session.execute(
                    delete(GalleryPendingDeletion).where(GalleryPendingDeletion.id == row_id)
                )
            done += 1
            continue
        try:
            if row.is_prefix:
                await storage.delete_prefix(row.target)
            else:
                await storage.delete(row.target)
        except StorageError as exc:
            attempts = row.attempts + 1
            log.warning(
                "storage_delete_failed",
                target=row.target,
                reason=row.reason,
                attempts=attempts,
                error=str(exc),
            )
            async with session_scope(sessions) as session:
                await session.execute(
                    update(GalleryPendingDeletion)
                    .where(GalleryPendingDeletion.id == row_id)
                    .values(
                        attempts=attempts,
                        last_error=str(exc)[:2000],
                        next_attempt_at=utcnow() + backoff(attempts),
                    )
                )
            continue
        async with session_scope(sessions) as session:
            await session.execute(
                delete(GalleryPendingDeletion).where(GalleryPendingDeletion.id == row_id)
            )
        if row.attempts:
            log.info("storage_delete_recovered", target=row.target, attempts=row.attempts + 1)
        done += 1
    return done


#: Why a job's outputs are deleted when it failed or was cancelled (gallery.events).
ABANDONED_OUTPUTS = "abandoned_outputs"
_ENDED_WITHOUT_OUTPUTS = ("FAILED", "CANCELLED")


async def _job_running_again(session: AsyncSession, row: GalleryPendingDeletion) -> bool:
    """Whether the job whose outputs ``row`` deletes was retried since it ended (a video
    follows it in another status than the one that scheduled the delete)."""
    if row.reason != ABANDONED_OUTPUTS or not row.is_prefix:
        return False
    job_id = job_of_output_key(row.target)
    if job_id is None:
        return False
    found = await session.execute(
        select(GalleryVideo.id)
        .where(
            GalleryVideo.job_id == job_id,
            GalleryVideo.job_status.not_in(_ENDED_WITHOUT_OUTPUTS),
        )
        .limit(1)
    )
    return found.first() is not None


async def sweep_deletions(infra: Infra, *, now: datetime | None = None) -> int:
    """Retry every due delete once; returns how many were done."""
    now = now or utcnow()
    done = 0
    last_id = 0
    while True:
        async with infra.sessions() as session:
            ids = list(
                (
                    await session.execute(
                        select(GalleryPendingDeletion.id)
                        .where(
                            GalleryPendingDeletion.next_attempt_at <= now,
                            GalleryPendingDeletion.id > last_id,
                        )
                        .order_by(GalleryPendingDeletion.id)
                        .limit(BATCH)
                    )
                ).scalars()
            )
        if not ids:
            break
        last_id = ids[-1]
        done += await carry_out(infra.sessions, infra.storage, ids)
    log.info("deletions_swept", done=done, pending=await pending_count(infra.sessions))
    return done


async def pending_count(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> int:
    """Deletes that failed or are due and not yet carried out (an operator's signal that
    storage is failing). Deletes scheduled for later (``not_before``) are not pending
    until their time comes."""
    now = now or utcnow()
    async with sessions() as session:
        count = await session.execute(
            select(func.count())
            .select_from(GalleryPendingDeletion)
            .where(
                or_(
                    GalleryPendingDeletion.attempts > 0,
                    GalleryPendingDeletion.next_attempt_at <= now,
                )
            )
        )
        return int(count.scalar_one())
