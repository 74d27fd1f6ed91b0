"""Links the fetcher would refuse are refused up front (no video is made), and a job
that failed for good (bad media, refused link) cannot be retried."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from videoforge.infra.db import session_scope
from videoforge.jobs import Job, transition
from videoforge.messages import JobStatus

from .conftest import Gateway, GatewayFactory, make_settings


async def _job_count(gw: Gateway) -> int:
    async with session_scope(gw.infra.sessions) as session:
        return int((await session.execute(select(func.count(Job.id)))).scalar_one())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/a.mp4", "private or reserved"),
        ("http://2130706433/a.mp4", "private or reserved"),  # 127.0.0.1 in decimal
        ("http://0x7f.1/a.mp4", "private or reserved"),
        ("http://[::ffff:169.254.169.254]/latest", "private or reserved"),
        ("http://169.254.169.254/latest/meta-data", "private or reserved"),
        ("http://10.0.0.7/a.mp4", "private or reserved"),
        ("https://media.example.com:8443/a.mp4", "Port 8443 is not allowed"),
        ("https://user:secret@media.example.com/a.mp4", "user name or password"),
        ("ftp://media.example.com/a.mp4", "Only http and https"),
        ("http://1.2.3.4.5/a.mp4", "not a valid address"),
    ],
)
async def test_refused_links_make_no_video(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, url: str, reason: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url))
    user = await gw.signup("imports@example.com")
    response = await gw.client.post(
        "/api/jobs", json={"source_url": url}, headers=gw.bearer(user["access_token"])
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_url"
    assert reason in error["message"]
    assert gw.gallery.hits["create_video"] == 0
    assert await _job_count(gw) == 0


async def test_allowed_ports_come_from_the_fetchers_setting(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url, IMPORT_ALLOWED_PORTS="443,8443"))
    user = await gw.signup("ports@example.com")
    auth = gw.bearer(user["access_token"])
    ok = await gw.client.post(
        "/api/jobs", json={"source_url": "https://media.example.com:8443/a.mp4"}, headers=auth
    )
    assert ok.status_code == 201, ok.text
    refused = await gw.client.post(
        "/api/jobs", json={"source_url": "http://media.example.com/a.mp4"}, headers=auth
    )
    assert refused.status_code == 422
    assert "Port 80" in refused.json()["error"]["message"]


async def _fail(gw: Gateway, job_id: str, code: str) -> None:
    async with session_scope(gw.infra.sessions) as session:
        ident = uuid.UUID(job_id)
        await transition(
            session,
            ident,
            expected=JobStatus.PENDING,
            target=JobStatus.DOWNLOADING,
            values={"claim_token": "t" * 32},
        )
        await transition(
            session,
            ident,
            expected=JobStatus.DOWNLOADING,
            target=JobStatus.FAILED,
            values={"error_code": code, "error_text": "The file is incomplete or damaged."},
        )


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("corrupt_media", False),
        ("unsupported_format", False),
        ("blocked_address", False),
        ("gave_up", True),
        ("worker_lost", True),
    ],
)
async def test_retry_only_where_it_can_succeed(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, code: str, retryable: bool
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url))
    user = await gw.signup("retry@example.com")
    auth = gw.bearer(user["access_token"])
    video = gw.gallery.add_video(user["user"]["id"])
    job = (await gw.client.post("/api/jobs", json={"video_id": str(video.id)}, headers=auth)).json()
    assert job["retryable"] is False  # pending: nothing to retry
    await _fail(gw, job["id"], code)

    read = (await gw.client.get(f"/api/jobs/{job['id']}", headers=auth)).json()
    assert (read["status"], read["error_code"], read["retryable"]) == ("FAILED", code, retryable)
    listed = (await gw.client.get("/api/jobs", headers=auth)).json()["items"]
    assert [j["retryable"] for j in listed] == [retryable]

    response = await gw.client.post(f"/api/jobs/{job['id']}/retry", headers=auth)
    if retryable:
        assert response.status_code == 200
        assert response.json()["status"] == "PENDING"
    else:
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "not_retryable"
        assert "damaged" in response.json()["error"]["message"]
        after = (await gw.client.get(f"/api/jobs/{job['id']}", headers=auth)).json()
        assert after["status"] == "FAILED"
