"""Applying job events: the lifecycle, duplicates, reordering, re-processing, concurrent
duplicate delivery, and the consumer on the real events queue."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx

from videoforge.gallery.events import (
    Applied,
    apply_event,
    consume_once,
    handle_message,
    orphaned_objects,
    run_event_consumer,
)
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra, build_infra
from videoforge.infra.storage.keys import import_key, output_prefix, user_segment
from videoforge.messages import JobEvent, JobStatus, Rendition
from videoforge.settings import Settings

from .conftest import SeedVideo, Users

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def event(
    video: GalleryVideo, job: uuid.UUID, seq: int, status: JobStatus, **fields: Any
) -> JobEvent:
    payload: dict[str, Any] = {
        "job_id": job,
        "video_id": video.id,
        "user_id": video.user_id,
        "seq": seq,
        "status": status,
        "at": T0 + timedelta(seconds=seq) + fields.pop("later", timedelta(0)),
    }
    if status is JobStatus.COMPLETED:
        payload |= {
            "duration": 2.5,
            "width": 320,
            "height": 240,
            "video_codec": "h264",
            "audio_codec": "aac",
            "file_size": 12345,
            "thumbnail_key": f"outputs/{job}/thumbnail.jpg",
            "preview_key": f"outputs/{job}/preview.gif",
            "hls_master_key": f"outputs/{job}/hls/master.m3u8",
            "metadata_key": f"outputs/{job}/metadata.json",
            "renditions": [
                Rendition(
                    quality="240p",
                    width=320,
                    height=240,
                    bandwidth=300_000,
                    mp4_key=f"outputs/{job}/240p.mp4",
                    playlist_key=f"outputs/{job}/hls/240p/index.m3u8",
                )
            ],
        }
    return JobEvent(**(payload | fields))


async def apply(infra: Infra, e: JobEvent) -> Applied:
    async with session_scope(infra.sessions) as session:
        return await apply_event(session, e)


async def reload(infra: Infra, video: GalleryVideo) -> GalleryVideo:
    async with infra.sessions() as session:
        fresh = await session.get(GalleryVideo, video.id)
    assert fresh is not None
    return fresh


async def uploaded(seed_video: SeedVideo, users: Users) -> GalleryVideo:
    return await seed_video(
        users.owner_id,
        status=VideoStatus.UPLOADED,
        visibility=Visibility.PUBLIC,
        s3_key=f"originals/{users.owner_id}/{uuid.uuid4().hex}/source",
    )


async def test_lifecycle_to_ready(
    infra: Infra, users: Users, seed_video: SeedVideo, client: httpx.AsyncClient
) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    assert await apply(infra, event(video, job, 0, JobStatus.PENDING)) is Applied.APPLIED
    assert (await reload(infra, video)).status is VideoStatus.PROCESSING
    await apply(infra, event(video, job, 1, JobStatus.PROCESSING, progress=40))
    fresh = await reload(infra, video)
    assert (fresh.status, fresh.progress) == (VideoStatus.PROCESSING, 40)
    await apply(infra, event(video, job, 2, JobStatus.COMPLETED, progress=100))
    fresh = await reload(infra, video)
    assert fresh.status is VideoStatus.READY
    assert fresh.resolution == "320x240"
    assert fresh.hls_master_key == f"outputs/{job}/hls/master.m3u8"
    assert fresh.renditions[0]["mp4_key"] == f"outputs/{job}/240p.mp4"

    body = (await client.get(f"/api/gallery/videos/{video.id}")).json()
    assert body["status"] == "ready"
    assert body["duration"] == 2.5
    assert body["video_codec"] == "h264"
    assert body["thumbnail_url"]
    assert body["preview_url"]
    assert body["renditions"][0]["quality"] == "240p"
    # Ready public videos appear in the public listing with their thumbnail.
    listed = (await client.get("/api/gallery/videos")).json()["items"]
    assert [v["thumbnail_url"] is not None for v in listed] == [True]


async def test_duplicates_and_reordering_never_move_backwards(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    assert await apply(infra, event(video, job, 2, JobStatus.PROCESSING, progress=60)) is (
        Applied.APPLIED
    )
    # An older progress event arrives late: ignored.
    assert await apply(infra, event(video, job, 1, JobStatus.PROCESSING, progress=30)) is (
        Applied.STALE
    )
    assert (await reload(infra, video)).progress == 60
    completed = event(video, job, 4, JobStatus.COMPLETED)
    assert await apply(infra, completed) is Applied.APPLIED
    assert await apply(infra, completed) is Applied.STALE  # duplicate delivery
    # A late PROCESSING of the same job, even with a higher seq, cannot undo ready.
    assert await apply(infra, event(video, job, 3, JobStatus.UPLOADING)) is Applied.STALE
    assert await apply(infra, event(video, job, 9, JobStatus.PROCESSING)) is Applied.STALE
    assert (await reload(infra, video)).status is VideoStatus.READY


async def test_failed_and_cancelled(infra: Infra, users: Users, seed_video: SeedVideo) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    await apply(infra, event(video, job, 1, JobStatus.PROCESSING))
    await apply(infra, event(video, job, 2, JobStatus.FAILED, error="unsupported format"))
    fresh = await reload(infra, video)
    assert fresh.status is VideoStatus.FAILED
    assert fresh.failure_reason == "unsupported format"

    # A retry (a new job) may move it to processing again; cancelling it with no
    # earlier outputs returns the video to "uploaded".
    retry = uuid.uuid4()
    later = timedelta(minutes=5)
    assert await apply(infra, event(video, retry, 0, JobStatus.PENDING, later=later)) is (
        Applied.APPLIED
    )
    assert (await reload(infra, video)).status is VideoStatus.PROCESSING
    await apply(infra, event(video, retry, 1, JobStatus.CANCELLED, later=later))
    fresh = await reload(infra, video)
    assert fresh.status is VideoStatus.UPLOADED
    assert fresh.failure_reason is None


async def test_reprocess_and_superseded_job(
    infra: Infra, users: Users, seed_video: SeedVideo, client: httpx.AsyncClient
) -> None:
    video = await uploaded(seed_video, users)
    first, second = uuid.uuid4(), uuid.uuid4()
    await apply(infra, event(video, first, 0, JobStatus.PROCESSING))
    await apply(infra, event(video, first, 1, JobStatus.COMPLETED))
    later = timedelta(hours=1)
    assert await apply(infra, event(video, second, 0, JobStatus.PROCESSING, later=later)) is (
        Applied.APPLIED
    )
    # The first job's events are superseded now, whatever their seq.
    assert await apply(infra, event(video, first, 7, JobStatus.COMPLETED)) is Applied.STALE
    assert (await reload(infra, video)).status is VideoStatus.PROCESSING
    await apply(infra, event(video, second, 1, JobStatus.COMPLETED, later=later))
    fresh = await reload(infra, video)
    assert fresh.status is VideoStatus.READY
    assert fresh.hls_master_key == f"outputs/{second}/hls/master.m3u8"

    # Deleting the video deletes the original and the outputs of both jobs.
    assert fresh.s3_key is not None
    keys = [
        fresh.s3_key,
        f"outputs/{first}/hls/master.m3u8",
        f"outputs/{second}/240p.mp4",
    ]
    for key in keys:
        await infra.storage.put_bytes(key, b"x", content_type="application/octet-stream")
    bystander = f"outputs/{uuid.uuid4()}/240p.mp4"
    await infra.storage.put_bytes(bystander, b"x", content_type="application/octet-stream")
    r = await client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert r.status_code == 204
    for key in keys:
        assert await infra.storage.head(key) is None, key
    assert await infra.storage.head(bystander) is not None
    # Events for a deleted video change nothing (the consumer cleans up after them).
    assert await apply(infra, event(video, second, 5, JobStatus.FAILED)) is Applied.ORPHANED


async def test_cancelled_reprocess_keeps_earlier_outputs_playable(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    first, second = uuid.uuid4(), uuid.uuid4()
    await apply(infra, event(video, first, 0, JobStatus.COMPLETED))
    later = timedelta(hours=1)
    await apply(infra, event(video, second, 0, JobStatus.PROCESSING, later=later))
    await apply(infra, event(video, second, 1, JobStatus.CANCELLED, later=later))
    assert (await reload(infra, video)).status is VideoStatus.READY


async def test_import_completion_stores_the_source_key(
    infra: Infra, users: Users, client: httpx.AsyncClient
) -> None:
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "Imported", "source_url": "https://example.com/a.mp4"},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "uploaded"
    assert created["s3_key"] is None
    async with infra.sessions() as session:
        video = await session.get(GalleryVideo, uuid.UUID(created["id"]))
    assert video is not None
    job = uuid.uuid4()
    source = f"originals/{users.owner_id}/{job.hex}/source"
    await apply(infra, event(video, job, 3, JobStatus.COMPLETED, source_key=source))
    body = (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()
    assert body["status"] == "ready"
    assert body["s3_key"] == source


async def test_foreign_and_unknown_events_are_ignored(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    forged = event(video, uuid.uuid4(), 1, JobStatus.COMPLETED, user_id=users.other_id)
    assert await apply(infra, forged) is Applied.IGNORED
    assert (await reload(infra, video)).status is VideoStatus.UPLOADED
    stray = event(video, uuid.uuid4(), 1, JobStatus.COMPLETED, video_id=uuid.uuid4())
    assert await apply(infra, stray) is Applied.ORPHANED
    orphan = event(video, uuid.uuid4(), 1, JobStatus.COMPLETED, video_id=None)
    assert await apply(infra, orphan) is Applied.IGNORED


async def test_concurrent_duplicate_delivery_applies_once(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    await apply(infra, event(video, job, 0, JobStatus.PROCESSING))
    completed = event(video, job, 1, JobStatus.COMPLETED)
    outcomes = await asyncio.gather(*(apply(infra, completed) for _ in range(8)))
    assert outcomes.count(Applied.APPLIED) == 1
    assert outcomes.count(Applied.STALE) == 7
    # The very first event of a new job delivered twice at once: applied once too.
    other = await uploaded(seed_video, users)
    first = event(other, uuid.uuid4(), 0, JobStatus.PENDING)
    outcomes = await asyncio.gather(*(apply(infra, first) for _ in range(6)))
    assert outcomes.count(Applied.APPLIED) == 1


async def test_consumer_on_the_events_queue(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    queue = infra.queues.events
    for e in (
        event(video, job, 0, JobStatus.PENDING),
        event(video, job, 2, JobStatus.COMPLETED),
        event(video, job, 1, JobStatus.PROCESSING),  # reordered
        event(video, job, 2, JobStatus.COMPLETED),  # duplicate
    ):
        await queue.send(e.dumps())
    received = 0
    for _ in range(10):
        received += await consume_once(infra, wait_seconds=0.2)
        if received >= 4:
            break
    assert received == 4
    assert (await reload(infra, video)).status is VideoStatus.READY
    # Everything handled was deleted.
    assert await queue.receive(max_messages=10, wait_seconds=0.2) == []


async def test_malformed_message_is_deleted(infra: Infra) -> None:
    queue = infra.queues.events
    await queue.send('{"not": "an event"')
    [message] = await queue.receive(max_messages=1, wait_seconds=1, visibility_timeout=1)
    assert await handle_message(infra, message) is None
    await asyncio.sleep(1.2)
    assert await queue.receive(max_messages=1, wait_seconds=0.2) == []


async def test_consumer_loop_runs_until_stopped(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    stop = asyncio.Event()
    task = asyncio.create_task(run_event_consumer(infra, stop))
    await infra.queues.events.send(event(video, uuid.uuid4(), 0, JobStatus.COMPLETED).dumps())
    for _ in range(100):
        if (await reload(infra, video)).status is VideoStatus.READY:
            break
        await asyncio.sleep(0.1)
    assert (await reload(infra, video)).status is VideoStatus.READY
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_consumer_on_sqs(
    users: Users, seed_video: SeedVideo, settings: Settings, moto_endpoint: str, unique: str
) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    jobs_url = sqs.create_queue(QueueName=f"jobs-{unique}")["QueueUrl"]
    events_url = sqs.create_queue(QueueName=f"events-{unique}")["QueueUrl"]
    sqs_settings = settings.model_copy(
        update={
            "sqs_queue_url": jobs_url,
            "sqs_events_queue_url": events_url,
            "aws_endpoint_url": moto_endpoint,
        }
    )
    sqs_infra = await build_infra(sqs_settings)
    try:
        video = await uploaded(seed_video, users)
        job = uuid.uuid4()
        for e in (
            event(video, job, 1, JobStatus.PROCESSING, progress=50),
            event(video, job, 2, JobStatus.FAILED, error="boom"),
            event(video, job, 1, JobStatus.PROCESSING, progress=50),
        ):
            await sqs_infra.queues.events.send(e.dumps())
        received = 0
        for _ in range(20):
            received += await consume_once(sqs_infra, wait_seconds=0.5)
            if received >= 3:
                break
        assert received == 3
        fresh = await reload(sqs_infra, video)
        assert fresh.status is VideoStatus.FAILED
        assert fresh.failure_reason == "boom"
    finally:
        await sqs_infra.aclose()


async def test_retry_of_the_same_job_after_failure(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    await apply(infra, event(video, job, 1, JobStatus.PROCESSING))
    await apply(infra, event(video, job, 2, JobStatus.FAILED, error="worker lost"))
    assert (await reload(infra, video)).status is VideoStatus.FAILED
    # The job is retried under the same id; its seq keeps counting up.
    assert await apply(infra, event(video, job, 3, JobStatus.PENDING)) is Applied.APPLIED
    assert (await reload(infra, video)).status is VideoStatus.PROCESSING
    assert await apply(infra, event(video, job, 2, JobStatus.FAILED)) is Applied.STALE
    assert await apply(infra, event(video, job, 5, JobStatus.COMPLETED)) is Applied.APPLIED
    fresh = await reload(infra, video)
    assert fresh.status is VideoStatus.READY
    assert fresh.failure_reason is None


async def test_standalone_app_consumes_events(
    settings: Settings, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    from videoforge.gallery.app import create_app

    video = await uploaded(seed_video, users)
    app = create_app(settings)  # builds its own backends and runs its own loops
    async with app.router.lifespan_context(app):
        await infra.queues.events.send(event(video, uuid.uuid4(), 0, JobStatus.COMPLETED).dumps())
        for _ in range(100):
            if (await reload(infra, video)).status is VideoStatus.READY:
                break
            await asyncio.sleep(0.1)
    assert (await reload(infra, video)).status is VideoStatus.READY


async def test_outputs_of_a_job_that_ends_after_its_video_was_deleted_are_removed(
    infra: Infra, users: Users, seed_video: SeedVideo, client: httpx.AsyncClient
) -> None:
    video = await uploaded(seed_video, users)
    job, other_job = uuid.uuid4(), uuid.uuid4()
    await apply(infra, event(video, job, 1, JobStatus.PROCESSING))
    deleted = await client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert deleted.status_code == 204, deleted.text
    # The job was still running: it uploads its outputs (and an import its original) now.
    late = [f"outputs/{job}/hls/master.m3u8", f"outputs/{job}/240p.mp4"]
    source = f"originals/{video.user_id}/{video.id}/import"
    unrelated = [f"outputs/{other_job}/thumbnail.jpg", f"originals/{video.user_id}/x/source"]
    for key in [*late, source, *unrelated]:
        await infra.storage.put_bytes(key, b"data", content_type="application/octet-stream")
    await infra.queues.events.send(
        event(video, job, 2, JobStatus.COMPLETED, source_key=source).dumps()
    )
    assert await consume_once(infra, wait_seconds=1) == 1
    for key in [*late, source]:
        assert await infra.storage.head(key) is None, key
    for key in unrelated:
        assert await infra.storage.head(key) is not None, key


def test_a_late_imports_original_is_recognised_in_either_key_form() -> None:
    """Imports once used the raw user id as the key's segment: an original stored then
    is still found (and so deleted) when its job ends after the video's deletion."""
    user, video_id, job = "auth0|5f1e", uuid.uuid4(), uuid.uuid4()
    video = GalleryVideo(id=video_id, user_id=user)
    current = import_key(user, video_id, job)
    assert current == f"originals/{user_segment(user)}/{video_id}/import"
    legacy = f"originals/{user}/{video_id}/import"
    upload = f"originals/{user_segment(user)}/{video_id}/original"
    for source, keys in ((current, [current]), (legacy, [legacy]), (upload, []), (None, [])):
        done = event(video, job, 2, JobStatus.COMPLETED, source_key=source)
        assert orphaned_objects(done) == (keys, [output_prefix(job)])
