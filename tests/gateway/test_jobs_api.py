"""The jobs API against both queue backends (database queue on SQLite and PostgreSQL,
SQS on moto), with video ownership asked of a gallery over HTTP."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gateway.gallery.client import GalleryClient
from videoforge.infra.db import session_scope
from videoforge.infra.queue.base import Queue
from videoforge.jobs import Job
from videoforge.messages import JobEvent, JobMessage, JobStatus
from videoforge.settings import Settings

from .conftest import Gateway, GatewayFactory, free_port, make_settings

#: tests/conftest.py sets METRICS_TOKEN: /metrics on a service port needs it.
METRICS_AUTH = {"Authorization": f"Bearer {os.environ['METRICS_TOKEN']}"}


@pytest.fixture(params=["db-sqlite", "db-postgres", "sqs"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Settings:
    """Settings for each queue backend (sync: the database fixtures run their own loop)."""
    if request.param == "sqs":
        endpoint = request.getfixturevalue("moto_endpoint")
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
        jobs = sqs.create_queue(QueueName=f"jobs-{unique}")["QueueUrl"]
        events = sqs.create_queue(QueueName=f"events-{unique}")["QueueUrl"]
        return make_settings(
            tmp_path,
            request.getfixturevalue("sqlite_url"),
            AWS_ENDPOINT_URL=endpoint,
            SQS_QUEUE_URL=jobs,
            SQS_EVENTS_QUEUE_URL=events,
        )
    url = request.getfixturevalue(request.param.removeprefix("db-") + "_url")
    return make_settings(tmp_path, url)


@pytest.fixture
async def gw(make_gateway: GatewayFactory, backend_settings: Settings) -> Gateway:
    return await make_gateway(backend_settings)


async def _drain(queue: Queue) -> list[str]:
    bodies: list[str] = []
    while True:
        batch = await queue.receive(max_messages=10, wait_seconds=0.5)
        if not batch:
            return bodies
        for message in batch:
            bodies.append(message.body)
            await queue.delete(message.receipt)


async def _job_count(gw: Gateway) -> int:
    async with session_scope(gw.infra.sessions) as session:
        return int((await session.execute(select(func.count(Job.id)))).scalar_one())


async def test_create_for_own_video_enqueues_after_commit(gw: Gateway) -> None:
    user = await gw.signup("owner@example.com")
    video = gw.gallery.add_video(user["user"]["id"])
    response = await gw.client.post(
        "/api/jobs", json={"video_id": str(video.id)}, headers=gw.bearer(user["access_token"])
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "PENDING"
    assert job["progress"] == 0
    assert job["video_id"] == str(video.id)
    assert job["input_source"] == video.s3_key
    assert job["user_id"] == user["user"]["id"]
    # The gallery was asked as the caller, with the request id passed on.
    seen = gw.gallery.seen_headers[-1]
    assert seen["authorization"] == f"Bearer {user['access_token']}"
    assert seen["x-request-id"] == response.headers["x-request-id"]

    messages = await _drain(gw.infra.queues.jobs)
    assert [JobMessage.model_validate_json(m).job_id for m in messages] == [uuid.UUID(job["id"])]
    # When the message exists the row is committed: another session sees it.
    async with session_scope(gw.infra.sessions) as session:
        row = await session.get(Job, uuid.UUID(job["id"]))
        assert row is not None
        assert row.status is JobStatus.PENDING
        assert row.enqueued_at is not None


async def test_idempotency_key_and_active_job(gw: Gateway) -> None:
    user = await gw.signup("idem@example.com")
    headers = {**gw.bearer(user["access_token"]), "Idempotency-Key": "upload-1"}
    video = gw.gallery.add_video(user["user"]["id"])
    first = await gw.client.post("/api/jobs", json={"video_id": str(video.id)}, headers=headers)
    second = await gw.client.post("/api/jobs", json={"video_id": str(video.id)}, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    # Same key, another video: refused rather than silently returning the wrong job.
    other = gw.gallery.add_video(user["user"]["id"])
    reused = await gw.client.post("/api/jobs", json={"video_id": str(other.id)}, headers=headers)
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    # Without a key, a video with a job in progress gets that job back (no duplicate work).
    again = await gw.client.post(
        "/api/jobs", json={"video_id": str(video.id)}, headers=gw.bearer(user["access_token"])
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert len(await _drain(gw.infra.queues.jobs)) == 1
    assert await _job_count(gw) == 1


async def test_someone_elses_video_is_not_found_and_nothing_is_sent(gw: Gateway) -> None:
    owner = await gw.signup("a@example.com")
    other = await gw.signup("b@example.com")
    for visibility in ("private", "public"):
        video = gw.gallery.add_video(owner["user"]["id"], visibility=visibility)
        response = await gw.client.post(
            "/api/jobs", json={"video_id": str(video.id)}, headers=gw.bearer(other["access_token"])
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "video_not_found"
    missing = await gw.client.post(
        "/api/jobs", json={"video_id": str(uuid.uuid4())}, headers=gw.bearer(other["access_token"])
    )
    assert missing.status_code == 404
    assert await _drain(gw.infra.queues.jobs) == []
    assert await _job_count(gw) == 0


async def test_list_get_and_isolation(gw: Gateway) -> None:
    alice = await gw.signup("alice@example.com")
    bob = await gw.signup("bob@example.com")
    ids = []
    for _ in range(3):
        video = gw.gallery.add_video(alice["user"]["id"])
        created = await gw.client.post(
            "/api/jobs", json={"video_id": str(video.id)}, headers=gw.bearer(alice["access_token"])
        )
        ids.append(created.json()["id"])
    page1 = await gw.client.get("/api/jobs?limit=2", headers=gw.bearer(alice["access_token"]))
    assert page1.status_code == 200
    body = page1.json()
    assert [j["id"] for j in body["items"]] == ids[::-1][:2]  # newest first
    page2 = await gw.client.get(
        "/api/jobs",
        params={"limit": 2, "cursor": body["next_cursor"]},
        headers=gw.bearer(alice["access_token"]),
    )
    assert [j["id"] for j in page2.json()["items"]] == [ids[0]]
    assert page2.json()["next_cursor"] is None

    one = await gw.client.get(f"/api/jobs/{ids[0]}", headers=gw.bearer(alice["access_token"]))
    assert one.status_code == 200
    assert one.json()["assets"] == []

    assert (await gw.client.get("/api/jobs", headers=gw.bearer(bob["access_token"]))).json()[
        "items"
    ] == []
    for method, path in (
        ("GET", f"/api/jobs/{ids[0]}"),
        ("POST", f"/api/jobs/{ids[0]}/cancel"),
        ("POST", f"/api/jobs/{ids[0]}/retry"),
        ("GET", f"/api/jobs/{ids[0]}/events"),
    ):
        response = await gw.client.request(method, path, headers=gw.bearer(bob["access_token"]))
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "job_not_found"
    assert (await gw.client.get("/api/jobs")).status_code == 401


async def test_cancel_and_retry(gw: Gateway) -> None:
    user = await gw.signup("c@example.com")
    auth = gw.bearer(user["access_token"])
    video = gw.gallery.add_video(user["user"]["id"])
    job = (await gw.client.post("/api/jobs", json={"video_id": str(video.id)}, headers=auth)).json()
    await _drain(gw.infra.queues.jobs)

    not_yet = await gw.client.post(f"/api/jobs/{job['id']}/retry", headers=auth)
    assert not_yet.status_code == 409
    assert not_yet.json()["error"]["code"] == "job_not_retryable"

    cancelled = await gw.client.post(f"/api/jobs/{job['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    events = [JobEvent.model_validate_json(b) for b in await _drain(gw.infra.queues.events)]
    assert [(e.job_id, e.status) for e in events] == [(uuid.UUID(job["id"]), JobStatus.CANCELLED)]
    assert events[0].video_id == video.id
    again = await gw.client.post(f"/api/jobs/{job['id']}/cancel", headers=auth)
    assert again.status_code == 200  # harmless
    assert await _drain(gw.infra.queues.events) == []

    retried = await gw.client.post(f"/api/jobs/{job['id']}/retry", headers=auth)
    assert retried.status_code == 200
    assert retried.json()["status"] == "PENDING"
    assert retried.json()["error_code"] is None
    messages = await _drain(gw.infra.queues.jobs)
    assert [JobMessage.model_validate_json(m).job_id for m in messages] == [uuid.UUID(job["id"])]
    events = [JobEvent.model_validate_json(b) for b in await _drain(gw.infra.queues.events)]
    assert [e.status for e in events] == [JobStatus.PENDING]


async def test_import_from_url(gw: Gateway) -> None:
    user = await gw.signup("d@example.com")
    auth = gw.bearer(user["access_token"])
    url = "https://media.example.com/clips/My%20Clip.mp4?x=1"
    response = await gw.client.post("/api/jobs", json={"source_url": url}, headers=auth)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["input_source"] == url
    video = gw.gallery.videos[uuid.UUID(job["video_id"])]
    assert video.user_id == user["user"]["id"]
    assert video.title == "My Clip.mp4"
    assert video.source_url == url
    assert len(await _drain(gw.infra.queues.jobs)) == 1

    titled = await gw.client.post(
        "/api/jobs", json={"source_url": url, "title": "Holiday"}, headers=auth
    )
    assert gw.gallery.videos[uuid.UUID(titled.json()["video_id"])].title == "Holiday"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.mp4",
        "file:///etc/passwd",
        "https://user:pw@example.com/a.mp4",
        "http:///nohost",
        "https://exa mple.com/a.mp4",
        "gopher://127.0.0.1:70/",
        "https://example.com:99999/a.mp4",
        "https://example.com/" + "a" * 2100,
    ],
)
async def test_import_url_shape_is_checked_up_front(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, url: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url))
    user = await gw.signup("e@example.com")
    response = await gw.client.post(
        "/api/jobs", json={"source_url": url}, headers=gw.bearer(user["access_token"])
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] in {"invalid_url", "validation_error"}
    assert gw.gallery.hits["create_video"] == 0
    assert await _job_count(gw) == 0


async def test_body_must_name_exactly_one_source(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url))
    user = await gw.signup("f@example.com")
    for body in ({}, {"video_id": str(uuid.uuid4()), "source_url": "https://example.com/a"}):
        response = await gw.client.post(
            "/api/jobs", json=body, headers=gw.bearer(user["access_token"])
        )
        assert response.status_code == 422


async def test_gallery_down_is_502(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url))
    user = await gw.signup("g@example.com")
    async with httpx.AsyncClient() as http:
        # Point the app's gallery client at a port nobody listens on.
        gw.app.state.gateway.gallery = GalleryClient(f"http://127.0.0.1:{free_port()}", http)
        response = await gw.client.post(
            "/api/jobs",
            json={"video_id": str(uuid.uuid4())},
            headers=gw.bearer(user["access_token"]),
        )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert await _job_count(gw) == 0


async def test_metrics_report_jobs_by_state_and_queue_depth(gw: Gateway) -> None:
    user = await gw.signup("metrics@example.com")
    video = gw.gallery.add_video(user["user"]["id"])
    created = await gw.client.post(
        "/api/jobs", json={"video_id": str(video.id)}, headers=gw.bearer(user["access_token"])
    )
    assert created.status_code == 201, created.text
    scrape = await gw.client.get("/metrics", headers=METRICS_AUTH)
    assert scrape.status_code == 200
    lines = scrape.text.splitlines()
    pending = [ln for ln in lines if ln.startswith("videoforge_jobs{") and "PENDING" in ln]
    assert pending, scrape.text[:2000]
    assert float(pending[0].rsplit(" ", 1)[1]) >= 1
    assert any(ln.startswith("videoforge_queue_depth{") for ln in lines)


async def test_loudness_normalization_is_the_jobs_choice(gw: Gateway) -> None:
    """``loudness_normalization`` is on unless the body turns it off, and the row keeps
    it for the worker."""
    user = await gw.signup("loud@example.com")
    auth = gw.bearer(user["access_token"])
    plain, quiet = (
        gw.gallery.add_video(user["user"]["id"]),
        gw.gallery.add_video(user["user"]["id"]),
    )
    default = await gw.client.post("/api/jobs", json={"video_id": str(plain.id)}, headers=auth)
    off = await gw.client.post(
        "/api/jobs",
        json={"video_id": str(quiet.id), "loudness_normalization": False},
        headers=auth,
    )
    assert default.status_code == off.status_code == 201, off.text
    assert default.json()["loudness_normalization"] is True
    assert off.json()["loudness_normalization"] is False
    async with session_scope(gw.infra.sessions) as session:
        rows = {
            str(job.video_id): job.loudness_normalization
            for job in (await session.execute(select(Job))).scalars()
        }
    assert rows == {str(plain.id): True, str(quiet.id): False}
    bad = await gw.client.post(
        "/api/jobs",
        json={"video_id": str(plain.id), "loudness_normalization": "maybe"},
        headers=auth,
    )
    assert bad.status_code == 422
