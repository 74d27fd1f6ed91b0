"""Server-Sent Events: live progress of a job, ending at its final state."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from videoforge.gateway.deps import GatewayOptions
from videoforge.infra.db import session_scope
from videoforge.jobs.transitions import set_progress, transition
from videoforge.messages import JobStatus

from .conftest import CHEAP_HASHER, Gateway, GatewayFactory, make_settings

OPTIONS = GatewayOptions(
    password_hasher=CHEAP_HASHER, events_poll_interval=0.05, events_heartbeat_interval=0.3
)


@pytest.fixture
async def gw(make_gateway: GatewayFactory, tmp_path: Path, database_url: str) -> Gateway:
    return await make_gateway(make_settings(tmp_path, database_url), options=OPTIONS)


async def _new_job(gw: Gateway) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await gw.signup(f"u{uuid.uuid4().hex[:6]}@example.com")
    video = gw.gallery.add_video(user["user"]["id"])
    job = await gw.client.post(
        "/api/jobs", json={"video_id": str(video.id)}, headers=gw.bearer(user["access_token"])
    )
    assert job.status_code == 201
    return user, job.json()


async def _frames(lines: AsyncIterator[str], out: asyncio.Queue[dict[str, Any]]) -> None:
    """Parse SSE frames into dicts (``event``, ``id``, ``data``; comments as ``comment``)."""
    frame: dict[str, Any] = {}
    async for line in lines:
        if line == "":
            if frame:
                await out.put(frame)
            frame = {}
        elif line.startswith(":"):
            await out.put({"comment": line[1:].strip()})
        else:
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")
    await out.put({"closed": True})


async def _next_event(out: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    while True:
        frame = await asyncio.wait_for(out.get(), timeout=10)
        if "comment" in frame or "retry" in frame:
            continue
        return frame


async def _advance(
    gw: Gateway, job_id: uuid.UUID, source: JobStatus, target: JobStatus, **values: Any
) -> None:
    async with session_scope(gw.infra.sessions) as session:
        won = await transition(
            session, job_id, expected=source, target=target, values={"claim_token": "c1", **values}
        )
        assert won is not None


async def _progress(gw: Gateway, job_id: uuid.UUID, progress: int) -> None:
    async with session_scope(gw.infra.sessions) as session:
        assert await set_progress(session, job_id, claim_token="c1", progress=progress)


async def test_stream_follows_progress_and_ends(gw: Gateway) -> None:
    user, job = await _new_job(gw)
    job_id = uuid.UUID(job["id"])
    out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with gw.client.stream(
        "GET", f"/api/jobs/{job_id}/events", params={"access_token": user["access_token"]}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"].startswith("no-cache")
        reader = asyncio.create_task(_frames(response.aiter_lines(), out))

        first = await _next_event(out)
        assert first["event"] == "status"
        assert json.loads(first["data"])["status"] == "PENDING"
        # Waiting alone in the queue: first in line, with an estimate.
        assert json.loads(first["data"])["queue_position"] == 1
        assert json.loads(first["data"])["eta_seconds"] > 0

        await _advance(gw, job_id, JobStatus.PENDING, JobStatus.DOWNLOADING)
        downloading = await _next_event(out)
        assert downloading["event"] == "status"
        assert json.loads(downloading["data"])["status"] == "DOWNLOADING"
        assert int(downloading["id"]) == json.loads(downloading["data"])["event_seq"]

        await _advance(gw, job_id, JobStatus.DOWNLOADING, JobStatus.PROCESSING)
        assert json.loads((await _next_event(out))["data"])["status"] == "PROCESSING"
        for value in (25, 60):
            await _progress(gw, job_id, value)
            event = await _next_event(out)
            assert event["event"] == "progress"
            data = json.loads(event["data"])
            assert (data["status"], data["progress"]) == ("PROCESSING", value)
            assert data["queue_position"] is None  # running, no longer queued
            assert data["eta_seconds"] is not None

        # Idle: heartbeats keep the connection alive.
        comment = await asyncio.wait_for(out.get(), timeout=5)
        assert comment == {"comment": "keepalive"}

        await _advance(gw, job_id, JobStatus.PROCESSING, JobStatus.UPLOADING)
        assert json.loads((await _next_event(out))["data"])["status"] == "UPLOADING"
        await _advance(gw, job_id, JobStatus.UPLOADING, JobStatus.COMPLETED, progress=100)
        done = await _next_event(out)
        assert done["event"] == "status"
        assert json.loads(done["data"])["status"] == "COMPLETED"
        assert json.loads(done["data"])["progress"] == 100
        assert json.loads(done["data"])["eta_seconds"] == 0
        end = await _next_event(out)
        assert end["event"] == "end"
        assert json.loads(end["data"]) == {"status": "COMPLETED"}
        assert await _next_event(out) == {"closed": True}  # the server ended the stream
        await reader


async def test_stream_of_a_final_job_ends_at_once(gw: Gateway) -> None:
    user, job = await _new_job(gw)
    auth = gw.bearer(user["access_token"])
    await gw.client.post(f"/api/jobs/{job['id']}/cancel", headers=auth)
    response = await gw.client.get(f"/api/jobs/{job['id']}/events", headers=auth)
    assert response.status_code == 200
    assert "event: status" in response.text
    assert '"status":"CANCELLED"' in response.text
    assert response.text.rstrip().endswith('data: {"status": "CANCELLED"}')


async def test_stream_needs_a_valid_token(gw: Gateway) -> None:
    _, job = await _new_job(gw)
    path = f"/api/jobs/{job['id']}/events"
    missing = await gw.client.get(path)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "auth_required"
    bad = await gw.client.get(path, params={"access_token": "x.y.z"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "token_invalid"
