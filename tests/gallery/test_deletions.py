"""The deletion outbox: a video's objects are deleted even when storage fails at the
moment the video is deleted (or an upload is swept); the sweep retries them later.

Storage "fails" for real: an S3 store on the moto server whose bucket does not exist
answers every delete with ``NoSuchBucket``.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select

from videoforge.gallery import deletions
from videoforge.gallery.app import create_app
from videoforge.gallery.events import consume_once
from videoforge.gallery.models import GalleryPendingDeletion, GalleryUpload, UploadState
from videoforge.gallery.sweep import GRACE, sweep_uploads
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.s3.store import S3Storage
from videoforge.messages import JobEvent, JobStatus

from .conftest import SeedVideo, Users

BLOB = b"x" * 10


async def _pending(infra: Infra) -> list[GalleryPendingDeletion]:
    async with infra.sessions() as session:
        rows = await session.execute(
            select(GalleryPendingDeletion).order_by(GalleryPendingDeletion.id)
        )
        return list(rows.scalars())


def _broken(infra: Infra, moto_endpoint: str, unique: str) -> Infra:
    missing = S3Storage(f"missing-{unique}", endpoint_url=moto_endpoint, path_style=True)
    return dataclasses.replace(infra, storage=missing)


async def _video_with_objects(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> tuple[uuid.UUID, list[str]]:
    job = uuid.uuid4()
    original = f"originals/{users.owner_id}/{uuid.uuid4().hex}/clip.mp4"
    video = await seed_video(users.owner_id, s3_key=original, job_id=job)
    keys = [original, f"outputs/{job}/hls/master.m3u8", f"outputs/{job}/720p.mp4"]
    for key in keys:
        await infra.storage.put_bytes(key, BLOB, content_type="application/octet-stream")
    return video.id, keys


async def test_a_deleted_video_leaves_nothing_pending(
    client: httpx.AsyncClient, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video_id, keys = await _video_with_objects(infra, users, seed_video)
    r = await client.delete(f"/api/gallery/videos/{video_id}", headers=users.owner)
    assert r.status_code == 204
    for key in keys:
        assert await infra.storage.head(key) is None, key
    assert await _pending(infra) == []


async def test_objects_survive_a_storage_outage_and_the_sweep_deletes_them(
    infra: Infra, users: Users, seed_video: SeedVideo, moto_endpoint: str, unique: str
) -> None:
    video_id, keys = await _video_with_objects(infra, users, seed_video)
    bystander = f"outputs/{uuid.uuid4()}/720p.mp4"
    await infra.storage.put_bytes(bystander, BLOB, content_type="application/octet-stream")

    app = create_app(infra.settings, _broken(infra, moto_endpoint, unique))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as outage:
        r = await outage.delete(f"/api/gallery/videos/{video_id}", headers=users.owner)
        # The video is gone for the user at once; storage failing is the platform's
        # problem, not theirs.
        assert r.status_code == 204
        assert (await outage.get(f"/api/gallery/videos/{video_id}")).status_code == 404

    pending = await _pending(infra)
    assert sorted((p.target, p.is_prefix) for p in pending) == sorted(
        [
            (keys[0], False),
            (f"{keys[1].split('/hls/')[0]}/", True),
            (f"captions/{video_id}/", True),  # the owner's uploaded captions
            (f"thumbnails/{video_id}/", True),  # and thumbnail images
        ]
    )
    assert {p.reason for p in pending} == {"video_deleted"}
    assert all(p.attempts == 1 and p.last_error for p in pending)
    for key in keys:
        assert await infra.storage.head(key) is not None, key

    # Not due yet: the sweep leaves them alone (the backoff is honoured).
    assert await deletions.sweep_deletions(infra) == 0
    assert len(await _pending(infra)) == 4

    # Storage is still down at the next try: a second failed attempt, a longer wait.
    later = utcnow() + deletions.backoff(1) + timedelta(seconds=1)
    assert await deletions.sweep_deletions(_broken(infra, moto_endpoint, unique), now=later) == 0
    retried = await _pending(infra)
    assert [p.attempts for p in retried] == [2, 2, 2, 2]
    assert all(p.next_attempt_at > later for p in retried)

    # Storage is back: the sweep finishes the job and empties the outbox.
    much_later = utcnow() + deletions.MAX_BACKOFF + timedelta(seconds=1)
    assert await deletions.sweep_deletions(infra, now=much_later) == 4
    for key in keys:
        assert await infra.storage.head(key) is None, key
    assert await infra.storage.head(bystander) is not None
    assert await _pending(infra) == []


async def test_a_swept_upload_is_deleted_once_storage_is_back(
    infra: Infra, users: Users, moto_endpoint: str, unique: str
) -> None:
    key = f"originals/{users.owner_id}/{uuid.uuid4().hex}/lost.mp4"
    await infra.storage.put_bytes(key, BLOB, content_type="video/mp4")
    expired = utcnow() - GRACE - timedelta(minutes=1)
    async with session_scope(infra.sessions) as session:
        session.add(
            GalleryUpload(
                key=key,
                user_id=users.owner_id,
                filename="lost.mp4",
                content_type="video/mp4",
                size=len(BLOB),
                expires_at=expired,
            )
        )

    assert await sweep_uploads(_broken(infra, moto_endpoint, unique)) == 1
    async with infra.sessions() as session:
        upload = await session.get(GalleryUpload, key)
    assert upload is not None
    assert upload.state is UploadState.SWEPT
    assert await infra.storage.head(key) is not None
    assert [(p.target, p.reason) for p in await _pending(infra)] == [(key, "upload_swept")]

    due = utcnow() + deletions.MAX_BACKOFF
    assert await deletions.sweep_deletions(infra, now=due) == 1
    assert await infra.storage.head(key) is None
    assert await _pending(infra) == []


def test_backoff_doubles_and_is_capped() -> None:
    waits = [deletions.backoff(n) for n in range(1, 12)]
    assert waits[0] == deletions.FIRST_RETRY
    assert waits[1] == 2 * deletions.FIRST_RETRY
    assert all(a <= b for a, b in itertools.pairwise(waits))
    assert waits[-1] == deletions.MAX_BACKOFF
    assert deletions.backoff(10_000) == deletions.MAX_BACKOFF


async def test_outputs_of_a_job_that_ended_after_deletion_wait_out_an_outage(
    infra: Infra,
    users: Users,
    seed_video: SeedVideo,
    client: httpx.AsyncClient,
    moto_endpoint: str,
    unique: str,
) -> None:
    """The job ends after its video was deleted while storage is down: the event is
    consumed (it must not loop to the dead-letter queue) and its outputs wait in the
    outbox until the sweep can delete them."""
    video = await seed_video(users.owner_id)
    job = uuid.uuid4()
    r = await client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert r.status_code == 204
    late = f"outputs/{job}/hls/master.m3u8"
    await infra.storage.put_bytes(late, BLOB, content_type="application/octet-stream")
    done = JobEvent(
        job_id=job,
        video_id=video.id,
        user_id=video.user_id,
        seq=3,
        status=JobStatus.FAILED,
        at=utcnow(),
        error="boom",
    )
    await infra.queues.events.send(done.dumps())

    assert await consume_once(_broken(infra, moto_endpoint, unique), wait_seconds=1) == 1
    assert await infra.queues.events.receive(max_messages=1, wait_seconds=0) == []
    assert [(p.target, p.reason) for p in await _pending(infra)] == [
        (f"outputs/{job}/", "orphaned_outputs")
    ]
    assert await infra.storage.head(late) is not None

    assert await deletions.sweep_deletions(infra, now=utcnow() + deletions.MAX_BACKOFF) == 1
    assert await infra.storage.head(late) is None
    assert await _pending(infra) == []
