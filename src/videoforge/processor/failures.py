"""After an attempt went wrong: whose fault it was, and carrying out what
:func:`~.policy.decide_retry` decides.

- bad media or a refused URL (**permanent**): ``FAILED`` once with the reason, the
  message deleted, the partial outputs removed;
- a failure of this machine (**local resource**: disk full, quota, a failing or read-only
  disk, or too little room to start): handed straight back to the queue, the attempt not
  counted when this machine confirmed it, and this worker pauses until it has room. A
  verdict on the media reached while the work disk is full is not believed either (an
  output that could not be written reads as a broken one): it is the machine's too;
- anything else (**transient**): ``PENDING`` again and the message visible after an
  exponential backoff, until the last receive, when the job is failed ("gave up after N
  attempts") and the message left to the dead-letter queue;
- a stopped run: ``CANCELLED`` at the user's request, or back to ``PENDING`` at shutdown.
"""

from __future__ import annotations

import structlog

from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import runs
from videoforge.messages import JobStatus
from videoforge.processor.fetch import FetchRejected
from videoforge.processor.ffmpeg import MediaRejected
from videoforge.processor.metrics import JOB_REQUEUES, JOBS_FINISHED, LOCAL_RESOURCE_FAILURES
from videoforge.processor.policy import FailureKind, RetryAction, decide_retry
from videoforge.processor.resources import (
    LOCAL_RESOURCE,
    LocalResourceError,
    corroborates,
    is_verified,
    os_error_reason,
)
from videoforge.processor.run import JobRun, StopReason, WorkerContext

log = structlog.get_logger("videoforge.processor.failures")

S = JobStatus


# ---------------------------------------------------------------- classification
def failure_kind(exc: BaseException) -> FailureKind:
    """Whose fault a failed attempt was: the media's, this machine's, or nobody's yet."""
    if os_error_reason(exc) is not None:
        return FailureKind.LOCAL_RESOURCE
    if permanent_failure(exc) is not None:
        return FailureKind.PERMANENT
    return FailureKind.TRANSIENT


def permanent_failure(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) when ``exc`` says retrying cannot help (bad media, refused URL).

    Everything else — storage, queue, database, network (``FetchFailed``), a crashed
    ffmpeg — is treated as transient and retried, bounded by the dead-letter queue.
    """
    if isinstance(exc, MediaRejected | FetchRejected):
        return exc.code, exc.message
    return None


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]


# ---------------------------------------------------------------- carrying it out
async def on_failure(ctx: WorkerContext, run: JobRun, exc: Exception) -> None:
    """Carry out what :func:`~.policy.decide_retry` decides for a failed attempt."""
    exc = await full_disk_over_media(ctx, exc)
    kind = failure_kind(exc)
    if kind is FailureKind.PERMANENT:
        rejected = permanent_failure(exc)
        assert rejected is not None
        await _fail(ctx, run, *rejected)
    elif kind is FailureKind.LOCAL_RESOURCE:
        await _on_local_resource(ctx, run, exc)
    else:
        await _on_transient(ctx, run, exc)


async def full_disk_over_media(ctx: WorkerContext, exc: Exception) -> Exception:
    """``exc``, unless it is a verdict on the media reached while the work disk is full
    (looked at before the run's directory is removed): then the machine's failure.

    The stderr watch of :mod:`.ffmpeg` catches what ffmpeg says about a full disk; this
    catches the rest (words it does not know, an output missing or empty because it
    could not be written). Verified, since the filesystem bears it out.
    """
    if not isinstance(exc, MediaRejected):
        return exc
    free = await ctx.disk.free()
    if not corroborates("no_space", free=free, read_only=False):
        return exc
    machine = LocalResourceError(
        "no_space",
        f"the work disk was full ({free} bytes free) when the media was judged "
        f"{exc.code}: {exc.message}",
        free=free,
    )
    machine.__cause__ = exc
    return machine


async def on_stopped(ctx: WorkerContext, run: JobRun) -> None:
    """The run was told to stop: end it as its reason says."""
    reason = run.reason
    if reason is StopReason.CANCEL_REQUESTED:
        if await run.write(ctx, runs.cancel) is None:
            return
        JOBS_FINISHED.labels(state=str(S.CANCELLED)).inc()
        log.info("job_cancelled")
        await ctx.delivery.delete(run.message)
        await drop_outputs(ctx, run)
    elif reason is StopReason.SHUTDOWN:
        await requeue(ctx, run, delay=0, why="shutdown")
    else:
        log.warning("run_stopped", reason=str(reason))


async def _fail(ctx: WorkerContext, run: JobRun, code: str, text: str) -> None:
    """Permanent failure: FAILED once with the reason, message deleted, no retries."""
    if await run.write(ctx, runs.fail, code=code, text=text) is None:
        log.warning("claim_lost_before_fail")
        return
    JOBS_FINISHED.labels(state=str(S.FAILED)).inc()
    log.warning("job_failed", error_code=code, error=text)
    await ctx.delivery.delete(run.message)
    await drop_outputs(ctx, run)


async def _give_up(ctx: WorkerContext, run: JobRun, code: str, text: str) -> None:
    """FAILED after the last attempt; the message is left to the dead-letter queue."""
    if await run.write(ctx, runs.fail, code=code, text=text) is not None:
        JOBS_FINISHED.labels(state=str(S.FAILED)).inc()
        await drop_outputs(ctx, run)
    # Not deleted: the next receive moves it to the dead-letter queue for operators.
    await ctx.delivery.release(run.message)


async def _on_transient(ctx: WorkerContext, run: JobRun, exc: Exception) -> None:
    attempt = run.message.receive_count
    log.warning(
        "job_attempt_failed",
        error=repr(exc)[:500],
        attempt=attempt,
        max_receives=ctx.max_receives,
    )
    decision = decide_retry(
        FailureKind.TRANSIENT,
        receive_count=attempt,
        max_receives=ctx.max_receives,
        backoff_base=ctx.retry_backoff_base,
    )
    if decision.action is RetryAction.GIVE_UP:
        await _give_up(ctx, run, "gave_up", f"gave up after {attempt} attempts: {describe(exc)}")
        return
    await requeue(ctx, run, delay=decision.delay, why="transient")


async def _on_local_resource(ctx: WorkerContext, run: JobRun, exc: Exception) -> None:
    """This machine could not do the job: hand it back at once for another worker.

    A verified failure (see :mod:`.resources`) does not count: ``attempts`` is restored
    and the message replaced by a fresh one. An unverified one (what ffmpeg said could
    have been the file's words) counts like any transient failure, so a file cannot make
    itself retried forever. After a failure, not a mere decline, the worker stops taking
    jobs until there is room.
    """
    reason = os_error_reason(exc) or "no_space"
    verified = is_verified(exc)
    disk = ctx.disk
    needed, available = run.room or (disk.floor, await disk.free())
    # Remembered so this worker takes the job again only with more room than now.
    times = disk.remember_no_room(run.job_id, available)
    decision = decide_retry(
        FailureKind.LOCAL_RESOURCE,
        receive_count=run.message.receive_count,
        max_receives=ctx.max_receives,
        backoff_base=ctx.retry_backoff_base,
        declined_here=times,
        verified=verified,
    )
    LOCAL_RESOURCE_FAILURES.labels(reason=reason).inc()
    log.warning(
        "job_released_local_resource",
        reason=reason,
        verified=verified,
        error=describe(exc),
        needed=needed,
        available=available,
        declined_here=times,
        action=str(decision.action),
        delay=decision.delay,
    )
    if reason != "declined":
        # Declining is not a fault: the floor is free and smaller jobs fit (the backoff
        # in decline_delay keeps it from getting the same job back hot).
        disk.stop_taking(reason, wanted=max(needed, available + 1))
    detail = exc.message if isinstance(exc, LocalResourceError) else describe(exc)
    if decision.action is RetryAction.GIVE_UP:
        await _give_up(
            ctx,
            run,
            LOCAL_RESOURCE,
            f"gave up after {run.message.receive_count} attempts; the last: workers "
            f"could not process the job ({reason}: {detail})",
        )
        return
    text = (
        f"A worker could not process the job ({reason}: {detail}); "
        "it was handed back for another worker."
    )
    await requeue(
        ctx,
        run,
        delay=decision.delay,
        why=LOCAL_RESOURCE,
        error=(LOCAL_RESOURCE, text),
        # The claim counted this attempt; it was the machine's, not the job's.
        uncount_attempt=not decision.counts,
    )


async def requeue(
    ctx: WorkerContext,
    run: JobRun,
    *,
    delay: int,
    why: str,
    error: tuple[str, str] | None = None,
    uncount_attempt: bool = False,
) -> None:
    """Give the job back (PENDING on our token) and make the message visible after
    ``delay``. With ``uncount_attempt`` the message is replaced by a new one, whose
    receive count starts again: an attempt that does not count must not bring the job
    closer to the dead-letter queue either."""
    try:
        change = await run.write(ctx, runs.give_back, error=error, uncount_attempt=uncount_attempt)
    except Exception as exc:
        # Database down: leave everything; the message returns after its timeout and
        # the job, its heartbeat stale by then, is reclaimed.
        log.error("requeue_failed", error=str(exc))
        return
    if change is None:
        return
    JOB_REQUEUES.labels(reason=why).inc()
    log.info("job_requeued", why=why, delay=delay)
    if uncount_attempt and await ctx.delivery.replace(run.message, run.job_id, delay=delay):
        return
    if not run.receipt_lost:
        await ctx.delivery.release(run.message, delay)


async def drop_outputs(ctx: WorkerContext, run: JobRun) -> None:
    """Remove whatever a stopped or failed run uploaded (best effort; the sweep
    catches what this misses)."""
    try:
        await ctx.infra.storage.delete_prefix(output_prefix(run.job_id))
    except Exception as exc:
        log.warning("drop_outputs_failed", error=str(exc))


__all__ = [
    "describe",
    "drop_outputs",
    "failure_kind",
    "full_disk_over_media",
    "on_failure",
    "on_stopped",
    "permanent_failure",
    "requeue",
]
