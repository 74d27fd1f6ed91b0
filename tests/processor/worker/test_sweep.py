"""The processor sweep: stuck PENDING jobs re-sent, orphaned outputs deleted, originals kept."""

from __future__ import annotations

import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import transition
from videoforge.messages import JobMessage, JobStatus
from videoforge.processor.sweep import lost_after, sweep
from videoforge.processor.workdirs import workdir_prefix

from .conftest import Stack, running_worker

S = JobStatus


async def _put(stack: Stack, key: str) -> None:
    await stack.infra.storage.put_bytes(key, b"data", content_type="application/octet-stream")


async def test_sweep_resends_a_stuck_pending_job_which_then_completes(
    stack: Stack, clip: Path
) -> None:
    key = await stack.upload(clip)
    stuck = await stack.new_job(key, send=False)  # the send after commit was "lost"
    fresh = await stack.new_job(key, send=False)

    # Too young to be called stuck: nothing is sent.
    report = await sweep(stack.infra)
    assert report.jobs_reenqueued == 0
    assert await stack.jobs_queue_empty()

    # Pretend time has passed for `stuck` only.
    async with session_scope(stack.infra.sessions) as session:
        from sqlalchemy import update

        from videoforge.jobs import Job

        await session.execute(
            update(Job).where(Job.id == stuck.id).values(enqueued_at=utcnow() - timedelta(hours=1))
        )
    report = await sweep(stack.infra)
    assert report.jobs_reenqueued == 1
    got = await stack.infra.queues.jobs.receive(
        max_messages=10, wait_seconds=1, visibility_timeout=1
    )
    assert [JobMessage.model_validate_json(m.body).job_id for m in got] == [stuck.id]
    await stack.infra.queues.jobs.change_visibility(got[0].receipt, 0)
    # enqueued_at was stamped: the next pass does not send it again.
    assert (await sweep(stack.infra)).jobs_reenqueued == 0

    async with running_worker(stack.infra):
        done = await stack.wait_status(stuck.id, {S.COMPLETED, S.FAILED}, timeout=90)
    assert done.status is S.COMPLETED
    assert (await stack.job(fresh.id)).status is S.PENDING


async def test_sweep_deletes_orphaned_outputs_but_never_originals(stack: Stack) -> None:
    key = "originals/u1/abc/source"
    await _put(stack, key)
    completed = await stack.new_job(key, send=False)
    failed = await stack.new_job(key, send=False)
    running = await stack.new_job(key, send=False)
    async with session_scope(stack.infra.sessions) as session:
        for status in (S.DOWNLOADING, S.PROCESSING, S.UPLOADING, S.COMPLETED):
            prev = {
                S.DOWNLOADING: S.PENDING,
                S.PROCESSING: S.DOWNLOADING,
                S.UPLOADING: S.PROCESSING,
                S.COMPLETED: S.UPLOADING,
            }[status]
            await transition(session, completed.id, expected=prev, target=status)
        await transition(session, failed.id, expected=S.PENDING, target=S.FAILED)
        await transition(session, running.id, expected=S.PENDING, target=S.DOWNLOADING)
    deleted_job = uuid.uuid4()  # outputs of a job row that no longer exists
    for job_id in (completed.id, failed.id, running.id, deleted_job):
        await _put(stack, f"{output_prefix(job_id)}hls/master.m3u8")
        await _put(stack, f"{output_prefix(job_id)}thumbnail.jpg")
    # Originals, even ones that look like a job's outputs, are never touched.
    originals = [key, f"originals/u1/{deleted_job}/import", f"originals/{deleted_job}/x"]
    for original in originals:
        await _put(stack, original)

    report = await sweep(stack.infra)

    assert report.output_prefixes_deleted == 2
    assert report.objects_deleted == 4
    assert await stack.keys(output_prefix(failed.id)) == []
    assert await stack.keys(output_prefix(deleted_job)) == []
    assert len(await stack.keys(output_prefix(completed.id))) == 2
    assert len(await stack.keys(output_prefix(running.id))) == 2
    assert await stack.keys("originals/") == sorted(originals)


async def test_sweep_removes_only_dead_workers_temp_dirs(stack: Stack) -> None:
    root = stack.work_dir
    root.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = root / f"{workdir_prefix(uuid.uuid4(), dead.pid)}x"
    live = root / f"{workdir_prefix(uuid.uuid4(), 1)}y"
    mine = root / f"{workdir_prefix(uuid.uuid4())}z"  # this (live) process's
    for d in (stale, live, mine):
        d.mkdir()
    report = await sweep(stack.infra)
    assert report.stale_workdirs == 1
    assert not stale.exists()
    assert live.exists()
    assert mine.exists()
    # Older than any job could run: stale even if the pid is alive (pid reuse).
    report = await sweep(stack.infra, now=utcnow() + timedelta(days=2))
    assert not live.exists()
    assert not mine.exists()


async def _die_while_running(stack: Stack, job_id: uuid.UUID, *, attempts: int) -> None:
    """What a worker killed mid-run on the message's last receive leaves: the job claimed
    and DOWNLOADING with a heartbeat that stopped, and no message (the queue moved it to
    the dead-letter queue)."""
    got = await stack.infra.queues.jobs.receive(max_messages=1, wait_seconds=1)
    assert [JobMessage.model_validate_json(m.body).job_id for m in got] == [job_id]
    await stack.infra.queues.jobs.delete(got[0].receipt)
    async with session_scope(stack.infra.sessions) as session:
        seq = await transition(
            session,
            job_id,
            expected=S.PENDING,
            target=S.DOWNLOADING,
            values={"claim_token": "d" * 32, "attempts": attempts},
        )
        assert seq is not None


async def _silence(stack: Stack, job_id: uuid.UUID, ago: timedelta) -> None:
    from sqlalchemy import update

    from videoforge.jobs import Job

    async with session_scope(stack.infra.sessions) as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - ago)
        )


async def test_sweep_resends_a_lost_running_job_which_then_completes(
    stack: Stack, clip: Path
) -> None:
    job = await stack.new_job(await stack.upload(clip))
    await _die_while_running(stack, job.id, attempts=1)
    silent_for = lost_after(stack.infra.settings)

    # Silent, but not for long enough: a worker may still come back to it.
    await _silence(stack, job.id, silent_for - timedelta(minutes=1))
    report = await sweep(stack.infra)
    assert (report.lost_jobs_resent, report.lost_jobs_failed) == (0, 0)
    assert (await stack.job(job.id)).status is S.DOWNLOADING

    await _silence(stack, job.id, silent_for + timedelta(minutes=1))
    report = await sweep(stack.infra)
    assert (report.lost_jobs_resent, report.lost_jobs_failed) == (1, 0)
    resent = await stack.job(job.id)
    assert resent.status is S.PENDING
    assert resent.claim_token is None
    assert (await stack.events(job.id))[-1].status is S.PENDING  # the live view follows
    assert (await sweep(stack.infra)).lost_jobs_resent == 0  # once

    async with running_worker(stack.infra):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
    assert done.status is S.COMPLETED
    assert done.attempts == 2


async def test_sweep_fails_a_lost_job_that_used_every_attempt(stack: Stack, clip: Path) -> None:
    job = await stack.new_job(await stack.upload(clip))
    attempts = stack.infra.settings.queue_max_receives
    await _die_while_running(stack, job.id, attempts=attempts)
    await _silence(stack, job.id, lost_after(stack.infra.settings) + timedelta(minutes=1))

    report = await sweep(stack.infra)
    assert (report.lost_jobs_resent, report.lost_jobs_failed) == (0, 1)
    failed = await stack.job(job.id)
    assert failed.status is S.FAILED
    assert failed.error_code == "worker_lost"
    assert f"{attempts} times" in (failed.error_text or "")
    assert failed.claim_token is None
    assert (await stack.events(job.id))[-1].status is S.FAILED
    assert await stack.jobs_queue_empty()
