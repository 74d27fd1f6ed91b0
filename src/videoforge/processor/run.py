"""One attempt at one job by this worker: its state, its writes, its heartbeat.

A :class:`JobRun` is created when a message's claim succeeds and lives until the job
ended or was handed back. Every write it makes goes through :meth:`JobRun.write`: one
short transaction calling a function of :mod:`videoforge.jobs.runs` on the run's claim
token, then the change's event published after the commit. No transaction is open while
downloading, transcoding or uploading.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from videoforge.infra.db import session_scope
from videoforge.infra.queue.base import Queue, QueueError, QueueMessage, ReceiptInvalid
from videoforge.jobs import runs
from videoforge.jobs.events import publish
from videoforge.messages import JobMessage
from videoforge.processor.room import Grant, WorkDisk

if TYPE_CHECKING:
    from videoforge.infra.runtime import Infra
    from videoforge.processor.config import ProcessingConfig
    from videoforge.settings import Settings

log = structlog.get_logger("videoforge.processor.run")

T = TypeVar("T")
Write = Callable[..., Awaitable[runs.Change | None]]


class StopReason(StrEnum):
    CANCEL_REQUESTED = "cancel_requested"
    CLAIM_LOST = "claim_lost"
    SHUTDOWN = "shutdown"


class Stopped(Exception):
    """The run was told to stop (see :class:`StopReason`)."""


class ClaimLost(Exception):
    """A conditional update on our claim token matched nothing: someone else owns the job."""


class Delivery:
    """The run's dealings with its queue message (every failure logged, none raised:
    at-least-once delivery and the claim cover a message left behind)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def release(self, message: QueueMessage, delay: int = 0) -> bool:
        """Make ``message`` visible again after ``delay`` seconds."""
        try:
            await self.queue.change_visibility(message.receipt, delay)
        except QueueError as exc:
            log.warning("message_release_failed", error=str(exc), delay=delay)
            return False
        return True

    async def delete(self, message: QueueMessage) -> None:
        try:
            await self.queue.delete(message.receipt)
        except QueueError as exc:
            # Harmless: the redelivery finds the job final and deletes it then.
            log.warning("message_delete_failed", error=str(exc))

    async def replace(self, message: QueueMessage, job_id: uuid.UUID, *, delay: int) -> bool:
        """Send a fresh message for ``job_id`` (its receive count starts again), then
        delete ``message``. Sent first, deleted second: a failure in between leaves a
        duplicate, which the claim turns into a no-op, never a lost job."""
        try:
            await self.queue.send(JobMessage(job_id=job_id).dumps(), delay_seconds=delay)
        except QueueError as exc:
            log.warning("requeue_send_failed", error=str(exc))
            return False
        await self.delete(message)
        return True


@dataclass
class WorkerContext:
    """What a run needs from its worker: infrastructure, limits, the work disk."""

    infra: Infra
    delivery: Delivery
    disk: WorkDisk
    config: Callable[[], ProcessingConfig]
    visibility: int
    max_receives: int
    retry_backoff_base: float
    fetch_allow: Collection[str] = ()
    runs: dict[uuid.UUID, JobRun] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.infra.settings

    def reserved_by_others(self, run: JobRun) -> int:
        """Work-disk bytes granted to this worker's other running jobs."""
        return sum(r.grant.reserved for r in self.runs.values() if r is not run and r.grant)


@dataclass
class JobRun:
    """One attempt at one job by this worker."""

    job_id: uuid.UUID
    message: QueueMessage
    token: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: StopReason | None = None
    receipt_lost: bool = False
    workdir: Path | None = None
    #: What the room check granted (None until it passed).
    grant: Grant | None = None
    #: What the room check found (bytes needed, bytes available), for the failure path.
    room: tuple[int, int] | None = None

    def stop(self, reason: StopReason) -> None:
        """Ask the run to stop (the first reason wins); stops ffmpeg via the cancel event."""
        if self.reason is None:
            self.reason = reason
        self.cancel.set()

    def check(self) -> None:
        if self.reason is not None:
            raise Stopped(self.reason)

    async def write(self, ctx: WorkerContext, fn: Write, **kwargs: Any) -> runs.Change | None:
        """``fn(session, job_id, token=..., **kwargs)`` in one transaction, then its
        change's event published; ``None`` (nothing published) when the claim was lost."""
        async with session_scope(ctx.infra.sessions) as session:
            change = await fn(session, self.job_id, token=self.token, **kwargs)
        if change is not None:
            # A part's own events are never published (its parent's are, in ``also``).
            own = () if change.job.parent_id is not None else (change.event,)
            for event in (*own, *change.also):
                await publish(ctx.infra.queues, event)
        return change

    async def step(self, ctx: WorkerContext, fn: Write, **kwargs: Any) -> runs.Change:
        """:meth:`write` for a step that must win: raises :class:`ClaimLost` otherwise."""
        change = await self.write(ctx, fn, **kwargs)
        if change is None:
            raise ClaimLost()
        return change

    async def guard(self, work: Coroutine[Any, Any, T]) -> T:
        """Await ``work`` unless the run is stopped first (then cancel it and raise)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.cancel.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise Stopped(self.reason)


async def _beat(ctx: WorkerContext, run: JobRun) -> runs.Beat | None:
    async with session_scope(ctx.infra.sessions) as session:
        return await runs.beat(session, run.job_id, token=run.token)


async def heartbeat(ctx: WorkerContext, run: JobRun, *, every: float, extend_every: float) -> None:
    """Keep the message invisible and the claim fresh; stop the run when the claim is
    lost or a cancel was requested. Runs until cancelled (or it stopped the run)."""
    last_extend = time.monotonic()
    queue = ctx.delivery.queue
    while True:
        await asyncio.sleep(every)
        if not run.receipt_lost and time.monotonic() - last_extend >= extend_every:
            try:
                await queue.change_visibility(run.message.receipt, ctx.visibility)
                last_extend = time.monotonic()
            except ReceiptInvalid:
                # The message was received again elsewhere; that receiver sees our
                # fresh heartbeat and leaves it alone. The database claim decides.
                run.receipt_lost = True
                log.warning("receipt_lost")
            except QueueError as exc:
                log.warning("visibility_extend_failed", error=str(exc))
        try:
            beat = await _beat(ctx, run)
        except Exception as exc:
            log.warning("heartbeat_failed", error=str(exc))
            continue
        if beat is None:
            log.warning("heartbeat_claim_lost")
            run.stop(StopReason.CLAIM_LOST)
            return
        if beat.cancel_requested:
            log.info("cancel_requested")
            run.stop(StopReason.CANCEL_REQUESTED)
            return


__all__ = [
    "ClaimLost",
    "Delivery",
    "JobRun",
    "StopReason",
    "Stopped",
    "WorkerContext",
    "heartbeat",
]
