"""Lifecycle events: each producer writes its event to the outbox in the transaction of
its change (upload confirm, import placeholder, job events applied, deletion), progress
goes out at coarse steps, and the delivery loop fans each event out once, to the owner's
subscribed webhooks only — a deleted video's event included."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gallery.events import apply_event
from videoforge.gallery.lifecycle import delivery as lifecycle_delivery
from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.lifecycle.publisher import progress_is_news
from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.gallery.schemas import VideoCreate
from videoforge.gallery.service import create_import
from videoforge.gallery.webhooks.models import GalleryWebhookDelivery
from videoforge.gallery.webhooks.service import SENDER_KEY, WebhookSender
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra
from videoforge.messages import JobStatus
from videoforge.settings import Settings

from .conftest import SeedVideo, Users
from .test_events import event
from .test_uploads import _ticket, _upload_single
from .webhook_receiver import Receiver


async def outbox(infra: Infra, video_id: uuid.UUID | None = None) -> list[GalleryLifecycleEvent]:
    async with infra.sessions() as session:
        stmt = select(GalleryLifecycleEvent).order_by(GalleryLifecycleEvent.created_at)
        if video_id is not None:
            stmt = stmt.where(GalleryLifecycleEvent.video_id == video_id)
        return list((await session.execute(stmt)).scalars())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def settings_extra(receiver: Receiver) -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_PORTS": f"80,443,{receiver.port}"}


@pytest.fixture
def sender(infra: Infra) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.2"]  # every name is the loopback receiver (allowed exactly)

    infra.extras[SENDER_KEY] = WebhookSender(resolver=resolve, allow_addresses=("127.0.0.2",))


# ---------------------------------------------------------------------- producers
async def test_job_events_give_progress_at_coarse_steps_and_ready(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, status=VideoStatus.UPLOADED, title="Clip")
    job = uuid.uuid4()
    steps = [
        (JobStatus.PENDING, 0),
        (JobStatus.DOWNLOADING, 0),
        (JobStatus.PROCESSING, 5),
        (JobStatus.PROCESSING, 20),  # still below 25: nothing
        (JobStatus.PROCESSING, 26),
        (JobStatus.PROCESSING, 49),  # nothing
        (JobStatus.PROCESSING, 80),  # past 50 and 75: one event
        (JobStatus.UPLOADING, 95),
        (JobStatus.COMPLETED, 100),
    ]
    for seq, (status, progress) in enumerate(steps):
        async with session_scope(infra.sessions) as session:
            await apply_event(session, event(video, job, seq, status, progress=progress))
    # A duplicate and a stale event change nothing, so they tell nothing either.
    async with session_scope(infra.sessions) as session:
        await apply_event(session, event(video, job, 8, JobStatus.COMPLETED, progress=100))
        await apply_event(session, event(video, job, 3, JobStatus.PROCESSING, progress=20))

    rows = await outbox(infra, video.id)
    announced = [(r.data["status"], r.data["progress"]) for r in rows if r.type == "job.progress"]
    assert announced == [
        ("PENDING", 0),
        ("DOWNLOADING", 0),
        ("PROCESSING", 5),
        ("PROCESSING", 26),
        ("PROCESSING", 80),
        ("UPLOADING", 95),
        ("COMPLETED", 100),
    ]
    (ready,) = [r for r in rows if r.type == "video.ready"]
    assert ready.user_id == users.owner_id
    assert ready.data["video_id"] == str(video.id)
    assert ready.data["job_id"] == str(job)
    assert (ready.data["duration"], ready.data["width"], ready.data["renditions"]) == (
        2.5,
        320,
        ["240p"],
    )
    assert {r.type for r in rows} == {"job.progress", "video.ready"}


async def test_a_failed_job_gives_video_failed(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, status=VideoStatus.UPLOADED)
    job = uuid.uuid4()
    async with session_scope(infra.sessions) as session:
        await apply_event(session, event(video, job, 0, JobStatus.PROCESSING, progress=10))
    async with session_scope(infra.sessions) as session:
        await apply_event(session, event(video, job, 1, JobStatus.FAILED, error="corrupt_media"))
    types = [(r.type, r.data.get("status")) for r in await outbox(infra, video.id)]
    assert types == [
        ("job.progress", "PROCESSING"),
        ("job.progress", "FAILED"),
        ("video.failed", None),
    ]
    failed = (await outbox(infra, video.id))[-1]
    assert failed.data["reason"] == "corrupt_media"


def test_progress_is_news_table() -> None:
    job = uuid.uuid4()
    fake_video = GalleryVideo(id=uuid.uuid4(), user_id="u")
    e = event(fake_video, job, 1, JobStatus.PROCESSING, progress=50)
    assert progress_is_news((None, None, 0), e)  # first event of the video
    assert progress_is_news((uuid.uuid4(), "PROCESSING", 50), e)  # another job
    assert progress_is_news((job, "DOWNLOADING", 50), e)  # another status
    assert progress_is_news((job, "PROCESSING", 49), e)  # crossed 50
    assert not progress_is_news((job, "PROCESSING", 50), e)
    assert not progress_is_news(
        (job, "PROCESSING", 74), event(fake_video, job, 2, JobStatus.PROCESSING, progress=74)
    )


async def test_an_event_exists_only_if_its_change_was_committed(infra: Infra, users: Users) -> None:
    principal = Principal(user_id=users.owner_id)
    body = VideoCreate(title="Import", source_url="https://example.com/v.mp4")

    async def failing_request() -> None:
        async with session_scope(infra.sessions) as session:
            await create_import(session, principal, body)
            raise RuntimeError("the request failed after the video was made")

    with pytest.raises(RuntimeError):
        await failing_request()
    assert await outbox(infra) == []
    async with session_scope(infra.sessions) as session:
        video = await create_import(session, principal, body)
    (created,) = await outbox(infra)
    assert (created.type, created.video_id, created.user_id) == (
        "video.created",
        video.id,
        users.owner_id,
    )
    assert created.data["source"] == "import"
    assert created.data["title"] == "Import"


async def test_confirming_an_upload_gives_video_created(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, len(tiny_mp4))
    await _upload_single(client, ticket, tiny_mp4)
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 201, r.text
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    (created,) = await outbox(infra)  # confirming again is no new video, and no new event
    assert created.type == "video.created"
    assert str(created.video_id) == r.json()["id"]
    assert created.data["source"] == "upload"
    assert created.data["status"] == "uploaded"


# ---------------------------------------------------------------------- fan-out
async def test_events_reach_only_the_owners_subscribed_webhooks_even_after_deletion(
    client: httpx.AsyncClient, users: Users, infra: Infra, receiver: Receiver, sender: None
) -> None:
    base = f"http://hooks.example:{receiver.port}"

    async def register(headers: dict[str, str], path: str, events: list[str]) -> None:
        r = await client.post(
            "/api/gallery/webhooks", json={"url": base + path, "events": events}, headers=headers
        )
        assert r.status_code == 201, r.text

    await register(users.owner, "/both", ["video.created", "video.deleted"])
    await register(users.owner, "/ready-only", ["video.ready"])
    await register(users.other, "/someone-else", ["video.created", "video.deleted"])

    r = await client.post(
        "/api/gallery/videos",
        json={"title": "Soon gone", "source_url": "https://example.com/a.mp4"},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    video_id = r.json()["id"]
    assert (
        await client.delete(f"/api/gallery/videos/{video_id}", headers=users.owner)
    ).status_code == 204
    assert (
        await client.get(f"/api/gallery/videos/{video_id}", headers=users.owner)
    ).status_code == 404

    for _ in range(3):
        await lifecycle_delivery.run_once(infra)
    got = [(r.path, json.loads(r.body)) for r in receiver.requests]
    # Due deliveries are attempted concurrently: arrival order is not promised.
    assert sorted((path, body["type"]) for path, body in got) == [
        ("/both", "video.created"),
        ("/both", "video.deleted"),
    ]
    assert {body["data"]["video_id"] for _, body in got} == {video_id}
    ids = [body["id"] for _, body in got]
    assert len(set(ids)) == 2  # one idempotency key per event


async def test_fan_out_happens_once_even_when_two_loops_race(
    client: httpx.AsyncClient, users: Users, infra: Infra, receiver: Receiver, sender: None
) -> None:
    r = await client.post(
        "/api/gallery/webhooks",
        json={"url": f"http://hooks.example:{receiver.port}/", "events": ["video.created"]},
        headers=users.owner,
    )
    assert r.status_code == 201
    for n in range(5):
        r = await client.post(
            "/api/gallery/videos",
            json={"title": f"v{n}", "source_url": "https://example.com/a.mp4"},
            headers=users.owner,
        )
        assert r.status_code == 201
    claimed = await asyncio.gather(
        lifecycle_delivery.fan_out_once(infra, bridge=False),
        lifecycle_delivery.fan_out_once(infra, bridge=False),
    )
    assert sum(claimed) == 5
    assert await lifecycle_delivery.fan_out_once(infra, bridge=False) == 0
    async with infra.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(GalleryWebhookDelivery))
    assert count == 5


async def test_the_standalone_apps_loop_delivers_a_processed_videos_events(
    settings: Settings, infra: Infra, users: Users, seed_video: SeedVideo, receiver: Receiver
) -> None:
    """create_app(settings) runs the delivery loop itself (as leader): a job event on
    the queue becomes video.ready at the owner's endpoint, with nothing called by hand."""
    from videoforge.gallery.app import create_app

    video = await seed_video(users.owner_id, status=VideoStatus.UPLOADED)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        own: Infra = app.state.infra

        async def resolve(host: str, port: int) -> list[str]:
            return ["127.0.0.2"]

        own.extras[SENDER_KEY] = WebhookSender(resolver=resolve, allow_addresses=("127.0.0.2",))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post(
                "/api/gallery/webhooks",
                json={"url": f"http://hooks.example:{receiver.port}/", "events": ["video.ready"]},
                headers=users.owner,
            )
            assert r.status_code == 201, r.text
        await infra.queues.events.send(event(video, uuid.uuid4(), 0, JobStatus.COMPLETED).dumps())
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.1)
    (received,) = receiver.requests
    body = json.loads(received.body)
    assert body["type"] == "video.ready"
    assert body["data"]["video_id"] == str(video.id)
