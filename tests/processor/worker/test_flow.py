"""A job goes PENDING -> ... -> COMPLETED through a real worker, queue, storage and ffmpeg."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import AssetType, enqueue, list_assets
from videoforge.messages import JobStatus

from .conftest import Stack, running_worker

S = JobStatus


async def test_job_completes_with_assets_and_ordered_events(stack: Stack, clip: Path) -> None:
    key = await stack.upload(clip)
    job = await stack.new_job(key)
    async with running_worker(stack.infra):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert done.progress == 100
    assert done.attempts == 1
    assert done.width == 320
    assert done.height == 240
    assert done.resolution == "320x240"
    assert done.video_codec == "h264"
    assert done.audio_codec == "aac"
    assert done.duration is not None
    assert 1.5 < done.duration < 2.5
    assert done.original_size == clip.stat().st_size
    assert done.metadata_s3_key == f"{output_prefix(job.id)}metadata.json"
    assert done.claim_token is None or len(done.claim_token) == 32

    # Outputs were uploaded under the job's prefix before COMPLETED; the source is intact.
    keys = await stack.keys(output_prefix(job.id))
    assert f"{output_prefix(job.id)}hls/master.m3u8" in keys
    assert f"{output_prefix(job.id)}thumbnail.jpg" in keys
    assert f"{output_prefix(job.id)}preview.gif" in keys
    assert any(k.endswith(".m4s") for k in keys)
    assert any(k.endswith(".mp4") and "/mp4/" in k for k in keys)
    assert await stack.infra.storage.head(key) is not None
    master = await stack.infra.storage.get_bytes(f"{output_prefix(job.id)}hls/master.m3u8")
    assert master.startswith(b"#EXTM3U")
    head = await stack.infra.storage.head(f"{output_prefix(job.id)}hls/master.m3u8")
    assert head is not None
    assert head.content_type is not None
    assert "mpegurl" in head.content_type.lower()

    async with stack.infra.sessions() as session:
        assets = await list_assets(session, job.id)
    types = {a.asset_type for a in assets}
    assert {
        AssetType.HLS,
        AssetType.VIDEO,
        AssetType.THUMBNAIL,
        AssetType.GIF,
        AssetType.METADATA,
    } <= types
    assert all(a.s3_key.startswith(output_prefix(job.id)) for a in assets)
    assert all(a.s3_key in keys for a in assets)

    events = await stack.events(job.id)
    statuses = [e.status for e in events]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert statuses[0] is S.DOWNLOADING
    assert statuses[-1] is S.COMPLETED
    # Every status appears in order of the machine.
    order = [S.DOWNLOADING, S.PROCESSING, S.UPLOADING, S.COMPLETED]
    firsts = [statuses.index(s) for s in order]
    assert firsts == sorted(firsts)
    final = events[-1]
    assert final.seq == done.event_seq
    assert final.user_id == "u1"
    assert final.video_id == done.video_id
    assert (final.width, final.height) == (320, 240)
    assert final.hls_master_key == f"{output_prefix(job.id)}hls/master.m3u8"
    assert final.thumbnail_key in keys
    assert final.preview_key in keys
    assert final.metadata_key in keys
    assert final.renditions
    for rendition in final.renditions:
        assert rendition.mp4_key in keys
        assert rendition.playlist_key in keys

    # The message is gone and the temp dir removed.
    assert await stack.jobs_queue_empty()
    assert stack.workdirs() == []


async def test_duplicate_messages_and_two_workers_process_once(stack: Stack, clip: Path) -> None:
    key = await stack.upload(clip)
    job = await stack.new_job(key)
    # A second message for the same job (a re-send), and two workers competing for both.
    await enqueue(stack.infra.queues, job.id)
    async with running_worker(stack.infra), running_worker(stack.infra):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
        # Give the duplicate time to be received and dropped.
        for _ in range(100):
            if await stack.jobs_queue_empty():
                break
            await asyncio.sleep(0.1)
    assert done.status is S.COMPLETED
    assert done.attempts == 1  # claimed exactly once
    statuses = [e.status for e in await stack.events(job.id)]
    assert statuses.count(S.COMPLETED) == 1
    assert statuses.count(S.DOWNLOADING) == 1
    async with stack.infra.sessions() as session:
        assets = await list_assets(session, job.id)
    assert len({a.s3_key for a in assets}) == len(assets)
    assert await stack.jobs_queue_empty()
    assert stack.workdirs() == []


async def test_unknown_job_and_bad_json_are_dropped_once(stack: Stack) -> None:
    from videoforge.messages import JobMessage
    from videoforge.processor.metrics import POISON_MESSAGES

    def poison(reason: str) -> float:
        return float(POISON_MESSAGES.labels(reason=reason)._value.get())

    before_bad, before_unknown = poison("bad_message"), poison("unknown_job")
    await stack.infra.queues.jobs.send("{not json")
    await stack.infra.queues.jobs.send(JobMessage(job_id=uuid.uuid4()).dumps())
    async with running_worker(stack.infra):
        for _ in range(100):
            if poison("bad_message") > before_bad and poison("unknown_job") > before_unknown:
                break
            await asyncio.sleep(0.1)
        # Longer than a visibility timeout: had they not been deleted they would be back.
        await asyncio.sleep(2.5)
    assert poison("bad_message") == before_bad + 1
    assert poison("unknown_job") == before_unknown + 1
    assert await stack.jobs_queue_empty()
    assert await stack.infra.queues.jobs.dead_letters() == []
