"""The Video Processor worker: consume the jobs queue and advance jobs to a final state.

One :class:`Worker` runs ``MAX_CONCURRENT_JOBS`` slots; each slot long-polls the jobs
queue for one message at a time and runs it:

1. parse the :class:`~videoforge.messages.JobMessage` (a poison message is recorded and
   deleted once);
2. **claim** the job with one conditional update ``PENDING -> DOWNLOADING`` carrying a
   fresh claim token (a duplicate delivery is a no-op; a job whose worker died — running
   with a heartbeat older than the heartbeat interval plus a margin, see
   :func:`~.policy.stale_after` — is reclaimed on its old token);
3. a **heartbeat** extends the message's visibility every third of the timeout and
   touches ``heartbeat_at`` every couple of seconds while the job runs, and stops the
   run when the claim is lost or a cancel was requested;
4. check that the work dir has room for the job (source size x ``WORK_DISK_FACTOR`` plus
   ``WORK_DISK_FLOOR``), then download the source into a fresh temp dir (a storage key,
   or an http(s) URL through the SSRF-safe fetcher, whose result is also kept under
   ``originals/``);
5. run the media pipeline (``PROCESSING``, progress written to the row, throttled);
6. upload every output under ``outputs/{job_id}/`` (``UPLOADING``), record the assets
   and the media facts, then ``COMPLETED``;
7. publish a :class:`~videoforge.messages.JobEvent` after every committed change, delete
   the message at a final state, and always remove the temp dir.

The modules, by concern: this one receives messages and runs slots; :mod:`.run` holds
one run's state, its writes (each a function of :mod:`videoforge.jobs.runs` on the
run's claim token, in its own short transaction, its event published after the commit)
and its heartbeat; :mod:`.steps` the steps; :mod:`.failures` what follows a failed or
stopped attempt, as decided by the pure functions of :mod:`.policy`; :mod:`.room` the
work disk. No database transaction is open while downloading, transcoding or uploading.

Failures: bad media
or a refused URL fail the job once; a failure of this machine (disk full, quota, a
failing or read-only disk, or too little room to start) hands the job straight back to
the queue without counting the attempt, and this worker takes no job until it has room
again; anything else is transient — the job goes back to ``PENDING`` and its message
becomes visible again after an exponential backoff, until the last receive, when the job
is failed ("gave up after N attempts") and the message left to the dead-letter queue.
SIGTERM/SIGINT stop receiving at once; running jobs get ``SHUTDOWN_GRACE_SECONDS`` to
finish, then they are stopped, put back to ``PENDING`` and their messages made visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from pydantic import ValidationError

from videoforge.infra import tracing
from videoforge.infra.db import session_scope, wait_until_reachable
from videoforge.infra.errors import log_failure, unavailable_from
from videoforge.infra.queue.base import Queue, QueueError, QueueMessage
from videoforge.jobs import runs
from videoforge.jobs.events import publish_job
from videoforge.jobs.models import Job
from videoforge.jobs.runs import ClaimOutcome
from videoforge.jobs.service import count_by_status
from videoforge.messages import JobMessage
from videoforge.migrations import check_migrated
from videoforge.processor import failures
from videoforge.processor.metrics import DUPLICATE_MESSAGES, JOB_REQUEUES, POISON_MESSAGES
from videoforge.processor.policy import (
    RETRY_BACKOFF_BASE_SECONDS,
    extend_interval,
    heartbeat_interval,
    stale_after,
)
from videoforge.processor.room import DISK_COOLDOWN_SECONDS, DISK_RECHECK_SECONDS, WorkDisk
from videoforge.processor.run import (
    ClaimLost,
    Delivery,
    JobRun,
    Stopped,
    StopReason,
    WorkerContext,
)
from videoforge.processor.run import heartbeat as run_heartbeat
from videoforge.processor.steps import run_steps
from videoforge.processor.workdirs import make_workdir, remove_stale_workdirs, remove_workdir
from videoforge.settings import Settings

if TYPE_CHECKING:
    from videoforge.infra.metrics import MetricsServer
    from videoforge.infra.runtime import Infra
    from videoforge.processor.config import ProcessingConfig

log = structlog.get_logger("videoforge.processor.worker")

#: Longest a receive long-polls (SQS allows 20 s); shutdown interrupts it at once.
RECEIVE_WAIT_SECONDS = 10.0
#: After the grace period, how long stopped jobs get to hand themselves back.
STOP_TIMEOUT_SECONDS = 20.0
#: Pause after a failed receive (queue unreachable).
RECEIVE_ERROR_PAUSE_SECONDS = 2.0


class Worker:
    """Consumes ``infra.queues.jobs`` with ``concurrency`` slots until ``stop`` is set."""

    def __init__(
        self,
        infra: Infra,
        *,
        concurrency: int | None = None,
        config: ProcessingConfig | None = None,
        retry_backoff_base: float = RETRY_BACKOFF_BASE_SECONDS,
        receive_wait: float = RECEIVE_WAIT_SECONDS,
        fetch_allow_addresses: Collection[str] = (),
        disk_recheck: float = DISK_RECHECK_SECONDS,
        disk_cooldown: float = DISK_COOLDOWN_SECONDS,
    ) -> None:
        """``config`` overrides the pipeline settings and ``fetch_allow_addresses`` lets
        the importer reach listed (e.g. loopback) addresses: both for tests only, which
        is why they are parameters and not environment variables (as are the disk
        re-check pace and cooldown)."""
        settings = infra.settings
        self.infra = infra
        self.settings = settings
        self.concurrency = concurrency or settings.max_concurrent_jobs
        self.visibility = settings.queue_visibility_timeout
        self.extend_every = extend_interval(self.visibility)
        # Also the heartbeat interval: heartbeat_at is written on every poll.
        self.poll_every = heartbeat_interval(self.visibility)
        self.stale_after = stale_after(self.visibility)
        self.grace = settings.shutdown_grace_seconds
        self.receive_wait = min(receive_wait, 20.0)
        self._config = config
        self.ctx = WorkerContext(
            infra=infra,
            delivery=Delivery(infra.queues.jobs),
            disk=WorkDisk(
                settings.work_dir,
                factor=settings.work_disk_factor,
                floor=settings.work_disk_floor,
                recheck=disk_recheck,
                cooldown=disk_cooldown,
            ),
            config=self.processing_config,
            visibility=self.visibility,
            max_receives=settings.queue_max_receives,
            retry_backoff_base=retry_backoff_base,
            fetch_allow=tuple(fetch_allow_addresses),
        )
        self.runs = self.ctx.runs

    # ------------------------------------------------------------------ plumbing
    @property
    def queue(self) -> Queue:
        return self.infra.queues.jobs

    def processing_config(self) -> ProcessingConfig:
        if self._config is None:
            from videoforge.processor.config import ProcessingConfig

            self._config = ProcessingConfig.from_settings(self.settings)
        return self._config

    def remove_stale_workdirs(self) -> list[Path]:
        """Start-up clean-up: leftovers of dead workers (never a live process's)."""
        return remove_stale_workdirs(
            self.settings.work_dir,
            max_age_seconds=self.settings.transcode_timeout + 3600,
            live_dirs={r.workdir for r in self.runs.values() if r.workdir is not None},
            own_pid_is_dead=not self.runs,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then shut down gracefully (see module docs)."""
        self.remove_stale_workdirs()
        slots = [
            asyncio.create_task(self._slot(stop), name=f"worker-slot-{i}")
            for i in range(self.concurrency)
        ]
        log.info("worker_started", concurrency=self.concurrency, visibility=self.visibility)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({stopper, *slots}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        stopper.cancel()
        log.info("worker_stopping", running=len(self.runs), grace=self.grace)
        _, pending = await asyncio.wait(slots, timeout=self.grace) if slots else (set(), set())
        if pending:
            for run in list(self.runs.values()):
                run.stop(StopReason.SHUTDOWN)
            _, pending = await asyncio.wait(pending, timeout=STOP_TIMEOUT_SECONDS)
        for task in pending:
            task.cancel()
        for result in await asyncio.gather(*slots, return_exceptions=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("worker_slot_crashed", error=repr(result))
        log.info("worker_stopped")

    async def _slot(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.ctx.disk.wait_for_room(stop)
            if stop.is_set():
                break
            try:
                messages = await self._receive(stop)
            except QueueError as exc:
                log.warning("receive_failed", error=str(exc))
                await _sleep_unless(stop, RECEIVE_ERROR_PAUSE_SECONDS)
                continue
            for message in messages:
                if stop.is_set():
                    # Received just as we were told to stop: hand it straight back.
                    await self.ctx.delivery.release(message)
                    continue
                try:
                    await self.handle(message)
                except Exception as exc:
                    # A bug must not kill the slot; the message comes back after its
                    # visibility timeout and is bounded by the dead-letter queue.
                    log_failure(log, "message_handling_crashed", exc, message_id=message.message_id)
                    if unavailable_from(exc) is not None:
                        # Receiving now would only use up other messages' receives; once
                        # the database answers, this one is tried again at once.
                        await wait_until_reachable(
                            self.infra.engine, stop, every=RECEIVE_ERROR_PAUSE_SECONDS
                        )
                        await self.ctx.delivery.release(message)

    async def _receive(self, stop: asyncio.Event) -> list[QueueMessage]:
        receive = asyncio.ensure_future(
            self.queue.receive(
                max_messages=1,
                wait_seconds=self.receive_wait,
                visibility_timeout=self.visibility,
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({receive, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if receive in done:
            stopper.cancel()
            return receive.result()
        # Stop receiving at once. A message claimed by this abandoned call becomes
        # visible again after its timeout: at-least-once delivery covers it.
        receive.cancel()
        with contextlib.suppress(asyncio.CancelledError, QueueError):
            await receive
        return []

    # ------------------------------------------------------------------ one message
    async def handle(self, message: QueueMessage) -> None:
        """Process one received message to its end (public for tests and tools)."""
        with structlog.contextvars.bound_contextvars(
            message_id=message.message_id, receive_count=message.receive_count
        ):
            try:
                job_message = JobMessage.model_validate_json(message.body)
            except ValidationError as exc:
                POISON_MESSAGES.labels(reason="bad_message").inc()
                log.error("poison_message", reason="bad_message", error=str(exc)[:500])
                await self.ctx.delivery.delete(message)
                return
            with (
                structlog.contextvars.bound_contextvars(job_id=str(job_message.job_id)),
                tracing.consumer_span(
                    "process job", message.attributes, job_id=str(job_message.job_id)
                ),
            ):
                await self._handle_job(job_message.job_id, message)

    async def _handle_job(self, job_id: uuid.UUID, message: QueueMessage) -> None:
        token = secrets.token_hex(16)
        outcome, job = await self.claim(job_id, message, token)
        if outcome is ClaimOutcome.UNKNOWN_JOB:
            POISON_MESSAGES.labels(reason="unknown_job").inc()
            log.error("poison_message", reason="unknown_job")
            await self.ctx.delivery.delete(message)
            return
        if outcome in (ClaimOutcome.FINISHED, ClaimOutcome.DUPLICATE):
            DUPLICATE_MESSAGES.inc()
            log.info("duplicate_message", outcome=str(outcome))
            await self.ctx.delivery.delete(message)
            return
        if outcome is ClaimOutcome.OWNER_ALIVE:
            # Its worker is alive and will finish; keep the message out of the way.
            log.warning("message_redelivered_while_running")
            await self.ctx.delivery.release(message, self.visibility)
            return
        assert job is not None
        run = JobRun(job_id=job_id, message=message, token=token)
        self.runs[job_id] = run
        try:
            await self._execute(run, job)
        finally:
            self.runs.pop(job_id, None)

    async def claim(
        self, job_id: uuid.UUID, message: QueueMessage, token: str
    ) -> tuple[ClaimOutcome, Job | None]:
        """Claim ``job_id`` for a new run on ``token`` (see :func:`videoforge.jobs.runs.claim`)."""
        async with session_scope(self.infra.sessions) as session:
            claimed = await runs.claim(
                session,
                job_id,
                message_id=message.message_id,
                token=token,
                stale_after=self.stale_after,
            )
        if claimed.outcome is ClaimOutcome.CLAIMED:
            assert claimed.job is not None
            if claimed.reclaimed:
                JOB_REQUEUES.labels(reason="reclaimed").inc()
                log.warning("job_reclaimed_from_dead_worker")
            log.info("job_claimed", attempt=claimed.job.attempts)
        return claimed.outcome, claimed.job

    async def _execute(self, run: JobRun, job: Job) -> None:
        ctx = self.ctx
        heartbeat = asyncio.create_task(
            run_heartbeat(ctx, run, every=self.poll_every, extend_every=self.extend_every),
            name=f"heartbeat-{run.job_id}",
        )
        try:
            await publish_job(self.infra.queues, job)
            try:
                # Inside the try: on a full disk even making the directory fails.
                run.workdir = make_workdir(self.settings.work_dir, run.job_id)
                await run_steps(ctx, run, job, run.workdir)
            except Stopped:
                await failures.on_stopped(ctx, run)
            except ClaimLost:
                log.warning("claim_lost")
            except Exception as exc:
                if run.reason is not None:
                    await failures.on_stopped(ctx, run)
                else:
                    await failures.on_failure(ctx, run, exc)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if run.workdir is not None:
                remove_workdir(run.workdir)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Build the infrastructure, refuse an un-migrated database, and run until stopped."""
    from videoforge.infra.runtime import build_infra

    infra = await build_infra(settings)
    metrics_server = None
    try:
        await check_migrated(infra.engine)
        metrics_server = _start_metrics(infra)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await Worker(infra).run(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await infra.aclose()


def _start_metrics(infra: Infra) -> MetricsServer | None:
    """Serve /metrics on ``METRICS_HOST:METRICS_PORT`` when the port is set (the worker
    has no HTTP server of its own); queue depth and jobs by state are read at scrape time."""
    from videoforge.infra import metrics

    port = infra.settings.metrics_port
    if port is None:
        return None

    async def jobs_by_state() -> None:
        async with infra.sessions() as session:
            metrics.set_jobs_by_state(await count_by_status(session))

    metrics.register_collector("queue_depth", metrics.queue_depth_collector(infra.queues))
    metrics.register_collector("jobs_by_state", jobs_by_state)
    return metrics.start_metrics_server(port, addr=infra.settings.metrics_host)


def run(settings: Settings) -> None:
    """``videoforge worker``: consume the jobs queue until SIGTERM/SIGINT, then exit 0."""
    from videoforge.infra.logging import configure_logging
    from videoforge.migrations import NotMigrated

    configure_logging(settings, service="processor")
    tracing.configure("processor")
    try:
        asyncio.run(serve(settings))
    except NotMigrated as exc:
        log.error("worker_refused_to_start", error=str(exc))
        raise SystemExit(f"error: {exc}") from None
