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

No database transaction is open while downloading, transcoding or uploading: every
step is its own short ``session_scope``. Failures (decided by :mod:`.policy`): bad media
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
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.infra import tracing
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.queue.base import Queue, QueueError, QueueMessage, ReceiptInvalid
from videoforge.infra.storage.keys import import_key, output_key, output_prefix
from videoforge.jobs.models import AssetType, Job, MediaAsset
from videoforge.jobs.service import count_by_status, is_url_source
from videoforge.jobs.transitions import RUNNING_STATUSES, transition
from videoforge.messages import JobMessage, JobStatus
from videoforge.migrations import check_migrated
from videoforge.processor import publisher
from videoforge.processor.fetch import FetchRejected, fetch_to_file
from videoforge.processor.ffmpeg import MediaRejected
from videoforge.processor.metrics import (
    DUPLICATE_MESSAGES,
    JOB_REQUEUES,
    JOBS_FINISHED,
    LOCAL_RESOURCE_FAILURES,
    POISON_MESSAGES,
    TRANSCODE_SECONDS,
    WORKER_DISK_FREE,
    WORKER_DISK_OK,
)
from videoforge.processor.policy import (
    RETRY_BACKOFF_BASE_SECONDS,
    FailureKind,
    RetryAction,
    bytes_needed,
    decide_retry,
    extend_interval,
    heartbeat_interval,
    may_take_work,
    owner_liveness,
    stale_after,
)
from videoforge.processor.resources import (
    LOCAL_RESOURCE,
    LocalResourceError,
    free_bytes,
    is_verified,
)
from videoforge.processor.resources import os_error_reason as _os_error_reason
from videoforge.processor.workdirs import make_workdir, remove_stale_workdirs, remove_workdir
from videoforge.settings import Settings

if TYPE_CHECKING:
    from videoforge.infra.metrics import MetricsServer
    from videoforge.infra.runtime import Infra
    from videoforge.processor.config import ProcessingConfig
    from videoforge.processor.pipeline import Output, PipelineResult

log = structlog.get_logger("videoforge.processor.worker")

T = TypeVar("T")
S = JobStatus

#: Longest a receive long-polls (SQS allows 20 s); shutdown interrupts it at once.
RECEIVE_WAIT_SECONDS = 10.0
#: Minimum spacing of progress writes to the job row.
PROGRESS_INTERVAL_SECONDS = 1.0
#: Outputs uploaded at once per job.
UPLOAD_CONCURRENCY = 4
#: While it has no room, how often the worker looks at its free space again.
DISK_RECHECK_SECONDS = 5.0
#: After handing a job back for lack of room, the longest the worker waits for room for
#: that job before taking smaller ones again (others had their chance at that job).
DISK_COOLDOWN_SECONDS = 30.0
#: Jobs whose lack of room this worker remembers (so it does not retry one without more
#: room than last time).
NO_ROOM_MEMORY = 256
#: After the grace period, how long stopped jobs get to hand themselves back.
STOP_TIMEOUT_SECONDS = 20.0
#: Pause after a failed receive (queue unreachable).
RECEIVE_ERROR_PAUSE_SECONDS = 2.0

_ASSET_TYPES = {
    "video": AssetType.VIDEO,
    "hls": AssetType.HLS,
    "thumbnail": AssetType.THUMBNAIL,
    "gif": AssetType.GIF,
    "metadata": AssetType.METADATA,
}

ProcessFn = Callable[..., Awaitable["PipelineResult"]]


class StopReason(StrEnum):
    CANCEL_REQUESTED = "cancel_requested"
    CLAIM_LOST = "claim_lost"
    SHUTDOWN = "shutdown"


class _Stopped(Exception):
    """The run was told to stop (see :class:`StopReason`)."""


class _ClaimLost(Exception):
    """A conditional update on our claim token matched nothing: someone else owns the job."""


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    UNKNOWN_JOB = "unknown_job"
    FINISHED = "finished"  # final already: a duplicate or stale delivery
    DUPLICATE = "duplicate"  # another message's worker owns it
    OWNER_ALIVE = "owner_alive"  # this very message, redelivered while its owner still runs


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
    #: Bytes this run was granted in the work dir (its estimate, without the floor).
    reserved: int = 0
    #: What the room check found (bytes needed, bytes available), for the failure path.
    room: tuple[int, int] | None = None

    def stop(self, reason: StopReason) -> None:
        """Ask the run to stop (the first reason wins); stops ffmpeg via the cancel event."""
        if self.reason is None:
            self.reason = reason
        self.cancel.set()

    def check(self) -> None:
        if self.reason is not None:
            raise _Stopped(self.reason)


@dataclass
class _NoRoom:
    """A job this worker had no room for: how much was available then, how often."""

    available: int
    times: int


@dataclass
class _Pause:
    """This worker stopped taking jobs for lack of room."""

    reason: str
    wanted: int  # free bytes it waits for (or the cooldown)
    since: float


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
        self.max_receives = settings.queue_max_receives
        self.extend_every = extend_interval(self.visibility)
        # Also the heartbeat interval: heartbeat_at is written on every poll.
        self.poll_every = heartbeat_interval(self.visibility)
        self.stale_after = stale_after(self.visibility)
        self.disk_factor = settings.work_disk_factor
        self.disk_floor = settings.work_disk_floor
        self.disk_recheck = disk_recheck
        self.disk_cooldown = disk_cooldown
        self._pause: _Pause | None = None
        self._no_room: dict[uuid.UUID, _NoRoom] = {}
        self.grace = settings.shutdown_grace_seconds
        self.retry_backoff_base = retry_backoff_base
        self.receive_wait = min(receive_wait, 20.0)
        self._config = config
        self._fetch_allow = tuple(fetch_allow_addresses)
        self.runs: dict[uuid.UUID, JobRun] = {}

    # ------------------------------------------------------------------ plumbing
    @property
    def queue(self) -> Queue:
        return self.infra.queues.jobs

    @property
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
            await self._wait_for_room(stop)
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
                    await self._release(message)
                    continue
                try:
                    await self.handle(message)
                except Exception:
                    # A bug must not kill the slot; the message comes back after its
                    # visibility timeout and is bounded by the dead-letter queue.
                    log.exception("message_handling_crashed", message_id=message.message_id)

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

    async def _release(self, message: QueueMessage) -> None:
        with contextlib.suppress(QueueError):
            await self.queue.change_visibility(message.receipt, 0)

    async def _delete(self, message: QueueMessage) -> None:
        try:
            await self.queue.delete(message.receipt)
        except QueueError as exc:
            # Harmless: the redelivery finds the job final and deletes it then.
            log.warning("message_delete_failed", error=str(exc))

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
                await self._delete(message)
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
        outcome, job = await self._claim(job_id, message, token)
        if outcome is ClaimOutcome.UNKNOWN_JOB:
            POISON_MESSAGES.labels(reason="unknown_job").inc()
            log.error("poison_message", reason="unknown_job")
            await self._delete(message)
            return
        if outcome in (ClaimOutcome.FINISHED, ClaimOutcome.DUPLICATE):
            DUPLICATE_MESSAGES.inc()
            log.info("duplicate_message", outcome=str(outcome))
            await self._delete(message)
            return
        if outcome is ClaimOutcome.OWNER_ALIVE:
            # Its worker is alive and will finish; keep the message out of the way.
            log.warning("message_redelivered_while_running")
            with contextlib.suppress(QueueError):
                await self.queue.change_visibility(message.receipt, self.visibility)
            return
        assert job is not None
        run = JobRun(job_id=job_id, message=message, token=token)
        self.runs[job_id] = run
        try:
            await self._execute(run, job)
        finally:
            self.runs.pop(job_id, None)

    async def _claim(
        self, job_id: uuid.UUID, message: QueueMessage, token: str
    ) -> tuple[ClaimOutcome, Job | None]:
        """The claim: one conditional update, after resetting a dead worker's claim."""
        async with session_scope(self.infra.sessions) as session:
            job = await session.get(Job, job_id, populate_existing=True)
            if job is None:
                return ClaimOutcome.UNKNOWN_JOB, None
            if job.status.is_final:
                return ClaimOutcome.FINISHED, job
            reclaimed = False
            if job.status in RUNNING_STATUSES:
                now = utcnow()
                stale_before = now - timedelta(seconds=self.stale_after)
                age = None if job.heartbeat_at is None else (now - job.heartbeat_at).total_seconds()
                if owner_liveness(age, stale_after=self.stale_after).alive:
                    if job.claim_message_id == message.message_id:
                        return ClaimOutcome.OWNER_ALIVE, job
                    return ClaimOutcome.DUPLICATE, job
                # Its worker missed its heartbeats (it writes one every poll_every
                # seconds): dead. Take the claim away from its token (it cannot write
                # anything after this).
                reset = await transition(
                    session,
                    job_id,
                    expected=job.status,
                    target=S.PENDING,
                    claim_token=job.claim_token,
                    values={"claim_token": None},
                    where=[
                        (Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < stale_before),
                    ],
                )
                if reset is None:
                    return ClaimOutcome.DUPLICATE, job
                reclaimed = True
            claimed = await transition(
                session,
                job_id,
                expected=S.PENDING,
                target=S.DOWNLOADING,
                values={
                    "claim_token": token,
                    "claim_message_id": message.message_id,
                    "attempts": Job.attempts + 1,
                    "progress": 0,
                    "error_code": None,
                    "error_text": None,
                },
            )
            if claimed is None:
                return ClaimOutcome.DUPLICATE, job
            job = await session.get(Job, job_id, populate_existing=True)
        assert job is not None
        if reclaimed:
            JOB_REQUEUES.labels(reason="reclaimed").inc()
            log.warning("job_reclaimed_from_dead_worker")
        log.info("job_claimed", attempt=job.attempts)
        return ClaimOutcome.CLAIMED, job

    async def _execute(self, run: JobRun, job: Job) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(run), name=f"heartbeat-{run.job_id}")
        try:
            await publisher.publish(self.infra.queues, job)
            try:
                # Inside the try: on a full disk even making the directory fails.
                run.workdir = make_workdir(self.settings.work_dir, run.job_id)
                await self._pipeline(run, job, run.workdir)
            except _Stopped:
                await self._on_stopped(run)
            except _ClaimLost:
                log.warning("claim_lost")
            except Exception as exc:
                if run.reason is not None:
                    await self._on_stopped(run)
                else:
                    await self._on_failure(run, exc)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if run.workdir is not None:
                remove_workdir(run.workdir)

    async def _on_failure(self, run: JobRun, exc: Exception) -> None:
        """Carry out what :func:`~.policy.decide_retry` decides for a failed attempt."""
        kind = failure_kind(exc)
        if kind is FailureKind.PERMANENT:
            rejected = _permanent_failure(exc)
            assert rejected is not None
            await self._fail(run, *rejected)
        elif kind is FailureKind.LOCAL_RESOURCE:
            await self._on_local_resource(run, exc)
        else:
            await self._on_transient(run, exc)

    async def _pipeline(self, run: JobRun, job: Job, workdir: Path) -> None:
        source = workdir / "source"
        with tracing.span("download"):
            source_key = await self._download(run, job, source)
        run.check()
        job = await self._advance(
            run, S.DOWNLOADING, S.PROCESSING, {"source_key": source_key} if source_key else None
        )
        await publisher.publish(self.infra.queues, job)

        with tracing.span("transcode"):
            result = await self._transcode(run, job, source, workdir)
        run.check()
        job = await self._advance(run, S.PROCESSING, S.UPLOADING, {"progress": 100})
        await publisher.publish(self.infra.queues, job)

        with tracing.span("upload", outputs=len(result.outputs)):
            await self._guard(run, self._upload(job, result.outputs))
        run.check()
        job = await self._complete(run, result)
        JOBS_FINISHED.labels(state=str(S.COMPLETED)).inc()
        log.info("job_completed", outputs=len(result.outputs))
        await publisher.publish(self.infra.queues, job, **publisher.completed_fields(job, result))
        await self._delete(run.message)

    # ------------------------------------------------------------------ steps
    async def _download(self, run: JobRun, job: Job, target: Path) -> str | None:
        """Bring the source to ``target``; for an import, keep it under ``originals/``.

        First make sure there is room for the job (:meth:`_check_room`): an upload's size
        comes from the object store, an import's from its ``Content-Length`` when the
        server sends one (checked again once the headers arrive).
        """
        if not is_url_source(job.input_source):
            info = await self._guard(run, self.infra.storage.head(job.input_source))
            await self._check_room(run, info.size if info is not None else None)
            await self._guard(run, self.infra.storage.get_file(job.input_source, target))
            log.info("source_downloaded")
            return None
        await self._check_room(run, None)

        async def on_length(length: int) -> None:
            await self._check_room(run, length)

        fetched = await self._guard(
            run,
            fetch_to_file(
                job.input_source,
                target,
                settings=self.settings,
                allow_addresses=self._fetch_allow,
                on_length=on_length,
            ),
        )
        key = import_key(job.user_id, job.video_id, job.id)
        # The remote server's word on the type is only kept when it claims a video.
        declared = (fetched.content_type or "").split(";")[0].strip().lower()
        content_type = declared if declared.startswith("video/") else "application/octet-stream"
        await self._guard(
            run,
            self.infra.storage.put_file(
                key,
                target,
                content_type=content_type,
                metadata={"job_id": str(job.id), "source": "import"},
            ),
        )
        log.info("source_imported", key=key)
        return key

    async def _transcode(
        self, run: JobRun, job: Job, source: Path, workdir: Path
    ) -> PipelineResult:
        """Run the media pipeline (outputs under ``workdir/out``) with the job's own
        choices, progress throttled."""
        from videoforge.processor.pipeline import process_file

        last_value = -1
        last_write = 0.0

        async def on_progress(value: int) -> None:
            nonlocal last_value, last_write
            now = time.monotonic()
            if value == last_value or now - last_write < PROGRESS_INTERVAL_SECONDS:
                return
            last_value, last_write = value, now
            await self._progress(run, value)

        started = time.monotonic()
        try:
            return await process_file(
                source,
                workdir,
                self.processing_config,
                on_progress=on_progress,
                cancel=run.cancel,
                loudness_normalization=job.loudness_normalization,
            )
        finally:
            TRANSCODE_SECONDS.observe(time.monotonic() - started)

    async def _progress(self, run: JobRun, value: int) -> None:
        from videoforge.jobs.transitions import set_progress

        try:
            async with session_scope(self.infra.sessions) as session:
                seq = await set_progress(session, run.job_id, claim_token=run.token, progress=value)
                job = await session.get(Job, run.job_id, populate_existing=True)
        except Exception as exc:
            # Progress is advisory; a database hiccup must not fail a transcode.
            log.warning("progress_write_failed", error=str(exc))
            return
        if seq is None:
            run.stop(StopReason.CLAIM_LOST)
            return
        if job is not None:
            await publisher.publish(self.infra.queues, job)

    async def _upload(self, job: Job, outputs: list[Output]) -> None:
        """Upload every output (bounded parallelism; one failure cancels the rest)."""
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def one(output: Output) -> None:
            async with limit:
                await self.infra.storage.put_file(
                    output_key(job.id, output.rel_key),
                    output.path,
                    content_type=output.content_type,
                )

        try:
            async with asyncio.TaskGroup() as group:
                for output in outputs:
                    group.create_task(one(output))
        except BaseExceptionGroup as failed:
            # Report the first cause (e.g. StorageError), not the group, so it is
            # classified and described like any other failure.
            raise failed.exceptions[0] from None
        log.info("outputs_uploaded", count=len(outputs))

    async def _complete(self, run: JobRun, result: PipelineResult) -> Job:
        """Record the assets and the media facts and move to COMPLETED, in one transaction."""
        probe = result.probe
        async with session_scope(self.infra.sessions) as session:
            await _upsert_assets(session, run.job_id, result.outputs)
            seq = await transition(
                session,
                run.job_id,
                expected=S.UPLOADING,
                target=S.COMPLETED,
                claim_token=run.token,
                values={
                    "progress": 100,
                    "metadata_s3_key": output_key(run.job_id, result.metadata),
                    "duration": probe.duration,
                    "original_size": probe.size,
                    "original_bitrate": probe.bit_rate,
                    "resolution": f"{probe.width}x{probe.height}",
                    "width": probe.width,
                    "height": probe.height,
                    "video_codec": probe.video_codec,
                    "audio_codec": probe.audio_codec,
                    "cancel_requested": False,
                },
            )
            if seq is None:
                raise _ClaimLost()
            job = await session.get(Job, run.job_id, populate_existing=True)
        assert job is not None
        return job

    async def _advance(
        self, run: JobRun, source: JobStatus, target: JobStatus, values: dict[str, Any] | None
    ) -> Job:
        async with session_scope(self.infra.sessions) as session:
            seq = await transition(
                session,
                run.job_id,
                expected=source,
                target=target,
                claim_token=run.token,
                values=values,
            )
            if seq is None:
                raise _ClaimLost()
            job = await session.get(Job, run.job_id, populate_existing=True)
        assert job is not None
        log.info("job_advanced", status=str(target))
        return job

    async def _guard(self, run: JobRun, work: Coroutine[Any, Any, T]) -> T:
        """Await ``work`` unless the run is stopped first (then cancel it and raise)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(run.cancel.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise _Stopped(run.reason)

    # ------------------------------------------------------------------ endings
    async def _finish(self, run: JobRun, target: JobStatus, values: dict[str, Any]) -> Job | None:
        """Move our running job to ``target`` on our token; ``None`` if we lost it."""
        async with session_scope(self.infra.sessions) as session:
            seq = await transition(
                session,
                run.job_id,
                expected=RUNNING_STATUSES,
                target=target,
                claim_token=run.token,
                values=values,
            )
            if seq is None:
                return None
            return await session.get(Job, run.job_id, populate_existing=True)

    async def _fail(self, run: JobRun, code: str, text: str) -> None:
        """Permanent failure: FAILED once with the reason, message deleted, no retries."""
        job = await self._finish(
            run, S.FAILED, {"error_code": code[:64], "error_text": text, "claim_token": None}
        )
        if job is None:
            log.warning("claim_lost_before_fail")
            return
        JOBS_FINISHED.labels(state=str(S.FAILED)).inc()
        log.warning("job_failed", error_code=code, error=text)
        await publisher.publish(self.infra.queues, job)
        await self._delete(run.message)
        await self._drop_outputs(run.job_id)

    async def _on_stopped(self, run: JobRun) -> None:
        reason = run.reason
        if reason is StopReason.CANCEL_REQUESTED:
            job = await self._finish(
                run,
                S.CANCELLED,
                {
                    "error_code": "cancelled",
                    "error_text": "Cancelled by the user.",
                    "claim_token": None,
                },
            )
            if job is None:
                return
            JOBS_FINISHED.labels(state=str(S.CANCELLED)).inc()
            log.info("job_cancelled")
            await publisher.publish(self.infra.queues, job)
            await self._delete(run.message)
            await self._drop_outputs(run.job_id)
        elif reason is StopReason.SHUTDOWN:
            await self._requeue(run, delay=0, why="shutdown")
        else:
            log.warning("run_stopped", reason=str(reason))

    async def _on_transient(self, run: JobRun, exc: Exception) -> None:
        attempt = run.message.receive_count
        log.warning(
            "job_attempt_failed",
            error=repr(exc)[:500],
            attempt=attempt,
            max_receives=self.max_receives,
        )
        decision = decide_retry(
            FailureKind.TRANSIENT,
            receive_count=attempt,
            max_receives=self.max_receives,
            backoff_base=self.retry_backoff_base,
        )
        if decision.action is RetryAction.GIVE_UP:
            text = f"gave up after {attempt} attempts: {_describe(exc)}"
            await self._give_up(run, "gave_up", text)
            return
        await self._requeue(run, delay=decision.delay, why="transient")

    async def _give_up(self, run: JobRun, code: str, text: str) -> None:
        """FAILED after the last attempt; the message is left to the dead-letter queue."""
        job = await self._finish(
            run, S.FAILED, {"error_code": code, "error_text": text, "claim_token": None}
        )
        if job is not None:
            JOBS_FINISHED.labels(state=str(S.FAILED)).inc()
            await publisher.publish(self.infra.queues, job)
            await self._drop_outputs(run.job_id)
        # Not deleted: the next receive moves it to the dead-letter queue for operators.
        await self._release(run.message)

    async def _on_local_resource(self, run: JobRun, exc: Exception) -> None:
        """This machine could not do the job: hand it back at once for another worker.

        A verified failure (see :mod:`.resources`) does not count: ``attempts`` is
        restored and the message replaced by a fresh one. An unverified one (what ffmpeg
        said could have been the file's words) counts like any transient failure, so a
        file cannot make itself retried forever. After a failure, not a mere decline,
        the worker stops taking jobs until there is room.
        """
        reason = _os_error_reason(exc) or "no_space"
        verified = is_verified(exc)
        needed, available = run.room or (self.disk_floor, await self._free())
        seen = self._no_room.pop(run.job_id, None)
        times = (seen.times if seen is not None else 0) + 1
        # Remembered so this worker takes the job again only with more room than now.
        self._no_room[run.job_id] = _NoRoom(available=available, times=times)
        while len(self._no_room) > NO_ROOM_MEMORY:
            self._no_room.pop(next(iter(self._no_room)))
        decision = decide_retry(
            FailureKind.LOCAL_RESOURCE,
            receive_count=run.message.receive_count,
            max_receives=self.max_receives,
            backoff_base=self.retry_backoff_base,
            declined_here=times,
            verified=verified,
        )
        LOCAL_RESOURCE_FAILURES.labels(reason=reason).inc()
        log.warning(
            "job_released_local_resource",
            reason=reason,
            verified=verified,
            error=_describe(exc),
            needed=needed,
            available=available,
            declined_here=times,
            action=str(decision.action),
            delay=decision.delay,
        )
        if reason != "declined":
            # Declining is not a fault: the floor is free and smaller jobs fit (the
            # backoff in decline_delay keeps it from getting the same job back hot).
            self._stop_taking(reason, wanted=max(needed, available + 1))
        detail = exc.message if isinstance(exc, LocalResourceError) else _describe(exc)
        if decision.action is RetryAction.GIVE_UP:
            await self._give_up(
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
        values: dict[str, Any] = {"error_code": LOCAL_RESOURCE, "error_text": text}
        if not decision.counts:
            # The claim counted this attempt; it was the machine's, not the job's.
            values["attempts"] = Job.attempts - 1
        await self._requeue(
            run,
            delay=decision.delay,
            why=LOCAL_RESOURCE,
            values=values,
            fresh_message=not decision.counts,
        )

    async def _requeue(
        self,
        run: JobRun,
        *,
        delay: int,
        why: str,
        values: dict[str, Any] | None = None,
        fresh_message: bool = False,
    ) -> None:
        """Give the job back (PENDING on our token) and make the message visible after
        ``delay``. With ``fresh_message`` the message is replaced by a new one, whose
        receive count starts again: an attempt that does not count must not bring the
        job closer to the dead-letter queue either."""
        try:
            job = await self._finish(
                run,
                S.PENDING,
                {"claim_token": None, "enqueued_at": utcnow(), **(values or {})},
            )
        except Exception as exc:
            # Database down: leave everything; the message returns after its timeout and
            # the job, its heartbeat stale by then, is reclaimed.
            log.error("requeue_failed", error=str(exc))
            return
        if job is None:
            return
        JOB_REQUEUES.labels(reason=why).inc()
        log.info("job_requeued", why=why, delay=delay)
        await publisher.publish(self.infra.queues, job)
        if fresh_message:
            try:
                await self.queue.send(JobMessage(job_id=run.job_id).dumps(), delay_seconds=delay)
            except QueueError as exc:
                log.warning("requeue_send_failed", error=str(exc))
            else:
                # Sent first, deleted second: a failure in between leaves a duplicate,
                # which the claim turns into a no-op, never a lost job.
                await self._delete(run.message)
                return
        if not run.receipt_lost:
            try:
                await self.queue.change_visibility(run.message.receipt, delay)
            except QueueError as exc:
                log.warning("requeue_visibility_failed", error=str(exc))

    # ------------------------------------------------------------------ disk room
    async def _free(self) -> int:
        """Free bytes in the work dir (0 when it cannot even be looked at)."""
        try:
            free = await asyncio.to_thread(free_bytes, self.settings.work_dir)
        except OSError as exc:
            log.error("work_dir_unusable", path=str(self.settings.work_dir), error=str(exc))
            free = 0
        WORKER_DISK_FREE.set(free)
        return free

    async def _check_room(self, run: JobRun, source_size: int | None) -> None:
        """Decline the job (:class:`LocalResourceError`) unless the work dir has room.

        Needed: :func:`~.policy.bytes_needed` of the source size, and more than was
        available the last time this worker had no room for this job. Available: free
        space minus what the other running jobs were granted (their outputs may still
        grow into it).
        """
        needed = bytes_needed(source_size, factor=self.disk_factor, floor=self.disk_floor)
        seen = self._no_room.get(run.job_id)
        if seen is not None:
            # Meaningfully more than last time (free space drifts by a few bytes).
            more = max(self.disk_floor, seen.available // 10, 1)
            needed = max(needed, seen.available + more)
        others = sum(r.reserved for r in self.runs.values() if r is not run)
        available = await self._free() - others
        run.room = (needed, available)
        if available < needed:
            raise LocalResourceError(
                "declined",
                f"needs {needed} bytes free in the work dir, {available} available",
                needed=needed,
                free=available,
            )
        run.reserved = max(0, needed - self.disk_floor)
        log.info("room_checked", needed=needed, available=available, source_size=source_size)

    def _stop_taking(self, reason: str, *, wanted: int) -> None:
        """Report the worker unhealthy and stop receiving until :meth:`_wait_for_room`
        finds room again."""
        if self._pause is None:
            log.error("worker_unhealthy", reason=reason, wanted_free=wanted)
        self._pause = _Pause(reason=reason, wanted=wanted, since=time.monotonic())
        WORKER_DISK_OK.set(0)

    async def _wait_for_room(self, stop: asyncio.Event) -> None:
        """Before every receive: return when the worker may take a job, re-checking the
        free space every ``disk_recheck`` seconds while it may not (or until ``stop``)."""
        while not stop.is_set():
            free = await self._free()
            pause = self._pause
            if pause is None:
                if free >= self.disk_floor:
                    WORKER_DISK_OK.set(1)
                    return
                self._stop_taking("below_floor", wanted=self.disk_floor)
            elif may_take_work(
                free,
                floor=self.disk_floor,
                wanted=pause.wanted,
                paused_for=time.monotonic() - pause.since,
                cooldown=self.disk_cooldown,
            ):
                self._pause = None
                WORKER_DISK_OK.set(1)
                log.info("worker_healthy", free=free, was=pause.reason)
                return
            await _sleep_unless(stop, self.disk_recheck)

    async def _drop_outputs(self, job_id: uuid.UUID) -> None:
        """Remove whatever a stopped or failed run uploaded (best effort; the sweep
        catches what this misses)."""
        try:
            await self.infra.storage.delete_prefix(output_prefix(job_id))
        except Exception as exc:
            log.warning("drop_outputs_failed", error=str(exc))

    # ------------------------------------------------------------------ heartbeat
    async def _heartbeat(self, run: JobRun) -> None:
        """Keep the message invisible and the claim fresh; stop the run when the claim is
        lost or a cancel was requested."""
        last_extend = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_every)
            if not run.receipt_lost and time.monotonic() - last_extend >= self.extend_every:
                try:
                    await self.queue.change_visibility(run.message.receipt, self.visibility)
                    last_extend = time.monotonic()
                except ReceiptInvalid:
                    # The message was received again elsewhere; that receiver sees our
                    # fresh heartbeat and leaves it alone. The database claim decides.
                    run.receipt_lost = True
                    log.warning("receipt_lost")
                except QueueError as exc:
                    log.warning("visibility_extend_failed", error=str(exc))
            try:
                async with session_scope(self.infra.sessions) as session:
                    row = (
                        await session.execute(
                            update(Job)
                            .where(
                                Job.id == run.job_id,
                                Job.claim_token == run.token,
                                Job.status.in_(sorted(RUNNING_STATUSES)),
                            )
                            .values(heartbeat_at=utcnow())
                            .returning(Job.cancel_requested)
                            .execution_options(synchronize_session=False)
                        )
                    ).first()
            except Exception as exc:
                log.warning("heartbeat_failed", error=str(exc))
                continue
            if row is None:
                log.warning("heartbeat_claim_lost")
                run.stop(StopReason.CLAIM_LOST)
                return
            if row[0]:
                log.info("cancel_requested")
                run.stop(StopReason.CANCEL_REQUESTED)
                return


async def _upsert_assets(session: AsyncSession, job_id: uuid.UUID, outputs: list[Output]) -> None:
    """One row per recorded output, upserted on (job_id, s3_key) so a retry overwrites.

    HLS media segments are not recorded one by one (a long video has thousands); the
    playlists are, and everything lives under the job's prefix anyway.
    """
    rows = []
    for output in outputs:
        key = output_key(job_id, output.rel_key)
        if output.kind == "hls" and not key.endswith(".m3u8"):
            continue
        rows.append(
            {
                "id": uuid.uuid4(),
                "job_id": job_id,
                "asset_type": _ASSET_TYPES.get(output.kind, AssetType.VIDEO),
                "format": Path(output.rel_key).suffix.lstrip(".").lower()[:16] or "bin",
                "s3_key": key,
                "file_size": output.size,
                "quality": output.quality,
                "created_at": utcnow(),
            }
        )
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(MediaAsset).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[MediaAsset.job_id, MediaAsset.s3_key],
        set_={
            "asset_type": stmt.excluded.asset_type,
            "format": stmt.excluded.format,
            "file_size": stmt.excluded.file_size,
            "quality": stmt.excluded.quality,
        },
    )
    await session.execute(stmt)


def failure_kind(exc: BaseException) -> FailureKind:
    """Whose fault a failed attempt was: the media's, this machine's, or nobody's yet."""
    if _os_error_reason(exc) is not None:
        return FailureKind.LOCAL_RESOURCE
    if _permanent_failure(exc) is not None:
        return FailureKind.PERMANENT
    return FailureKind.TRANSIENT


def _permanent_failure(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) when ``exc`` says retrying cannot help (bad media, refused URL).

    Everything else — storage, queue, database, network (``FetchFailed``), a crashed
    ffmpeg — is treated as transient and retried, bounded by the dead-letter queue.
    """
    if isinstance(exc, MediaRejected | FetchRejected):
        return exc.code, exc.message
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]


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
    """Serve /metrics when ``METRICS_PORT`` is set (the worker has no HTTP server of its
    own); queue depth and jobs by state are read at scrape time."""
    from videoforge.infra import metrics

    port = infra.settings.metrics_port
    if port is None:
        return None

    async def jobs_by_state() -> None:
        async with infra.sessions() as session:
            metrics.set_jobs_by_state(await count_by_status(session))

    metrics.register_collector("queue_depth", metrics.queue_depth_collector(infra.queues))
    metrics.register_collector("jobs_by_state", jobs_by_state)
    return metrics.start_metrics_server(port)


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
