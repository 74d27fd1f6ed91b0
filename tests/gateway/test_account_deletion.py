"""Account deletion and storage figures through the gateway in front of the real gallery
(both on loopback, sharing the database and the embedded object store): ``/me`` shows
the gallery's numbers; ``DELETE /api/auth/me`` removes the account, its sessions, jobs,
videos and every stored object of them, and nobody else's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gallery.events import consume_once
from videoforge.gateway.accounts.models import Account, RefreshToken
from videoforge.infra.db import utcnow
from videoforge.infra.runtime import Infra, build_infra
from videoforge.jobs import Job
from videoforge.messages import JobEvent, JobStatus

from .conftest import CHEAP_HASHER, make_settings, serve
from .test_with_gallery import _upload, clip  # noqa: F401 - the clip fixture

PASSWORD = "long enough 1"


@dataclass
class Stack:
    client: httpx.AsyncClient
    infra: Infra


@pytest.fixture
async def stack(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Stack]:
    from videoforge.gallery.app import create_app as create_gallery
    from videoforge.gateway.app import create_app as create_gateway
    from videoforge.gateway.deps import GatewayOptions

    base = make_settings(tmp_path, sqlite_url, STORAGE_QUOTA_BYTES="50000000")
    infra = await build_infra(base, with_signing_key=True)
    try:
        async with serve(create_gallery(base, infra)) as gallery_url:
            settings = base.model_copy(update={"gallery_url": gallery_url})
            gateway = create_gateway(
                settings, infra, options=GatewayOptions(password_hasher=CHEAP_HASHER)
            )
            async with serve(gateway) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
                yield Stack(c, infra)
    finally:
        await infra.aclose()


async def _signup(c: httpx.AsyncClient, email: str) -> dict[str, Any]:
    r = await c.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def _auth(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


async def _keys(infra: Infra, prefix: str) -> list[str]:
    return [info.key async for info in infra.storage.list(prefix)]


async def test_me_shows_the_storage_the_gallery_counts(stack: Stack, clip: bytes) -> None:  # noqa: F811
    owner = await _signup(stack.client, "count@example.com")
    me = (await stack.client.get("/api/auth/me", headers=_auth(owner))).json()
    assert me["storage_used_bytes"] == 0
    assert me["storage_quota_bytes"] == 50_000_000
    await _upload(stack.client, owner["access_token"], clip, "Tiny")
    me = (await stack.client.get("/api/auth/me", headers=_auth(owner))).json()
    assert me["storage_used_bytes"] == len(clip)
    renamed = await stack.client.patch(
        "/api/auth/me", json={"display_name": "Counter"}, headers=_auth(owner)
    )
    assert renamed.json()["display_name"] == "Counter"
    assert renamed.json()["storage_used_bytes"] == len(clip)


async def test_deleting_the_account_removes_everything_of_it_and_nothing_else(
    stack: Stack,
    clip: bytes,  # noqa: F811
) -> None:
    c, infra = stack.client, stack.infra
    owner = await _signup(c, "leaving@example.com")
    other = await _signup(c, "staying@example.com")
    mine = [await _upload(c, owner["access_token"], clip, f"Mine {i}") for i in range(2)]
    theirs = await _upload(c, other["access_token"], clip, "Theirs")
    job = await c.post("/api/jobs", json={"video_id": mine[0]["id"]}, headers=_auth(owner))
    assert job.status_code == 201, job.text
    # What a processor would have stored for the job, and its report of the end.
    outputs = f"outputs/{job.json()['id']}/"
    await infra.storage.put_bytes(f"{outputs}720p.mp4", b"x" * 100, content_type="video/mp4")
    done = JobEvent(
        job_id=uuid.UUID(job.json()["id"]),
        video_id=uuid.UUID(mine[0]["id"]),
        user_id=owner["user"]["id"],
        seq=5,
        status=JobStatus.COMPLETED,
        at=utcnow(),
    )
    await infra.queues.events.send(done.dumps())
    assert await consume_once(infra, wait_seconds=0.1) == 1
    ready = await c.get(f"/api/gallery/videos/{mine[0]['id']}", headers=_auth(owner))
    assert ready.json()["storage_bytes"] == len(clip) + 100
    owner_prefix = f"originals/{owner['user']['id']}/"
    assert len(await _keys(infra, owner_prefix)) == 2

    wrong = await c.request(
        "DELETE", "/api/auth/me", json={"password": "not it at all"}, headers=_auth(owner)
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert len(await _keys(infra, owner_prefix)) == 2  # nothing deleted

    gone = await c.request(
        "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=_auth(owner)
    )
    assert gone.status_code == 204, gone.text
    assert await _keys(infra, owner_prefix) == []
    assert await _keys(infra, outputs) == []
    for video in mine:
        seen = await c.get(f"/api/gallery/videos/{video['id']}", headers=_auth(other))
        assert seen.status_code == 404
    assert await infra.storage.head(theirs["s3_key"]) is not None
    async with infra.sessions() as session:
        owner_id = uuid.UUID(owner["user"]["id"])
        assert await session.get(Account, owner_id) is None
        tokens = await session.execute(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.account_id == owner_id)
        )
        assert tokens.scalar_one() == 0
        jobs = await session.execute(
            select(func.count()).select_from(Job).where(Job.user_id == owner["user"]["id"])
        )
        assert jobs.scalar_one() == 0
    login = await c.post(
        "/api/auth/login", json={"email": "leaving@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401
    refreshed = await c.post("/api/auth/refresh", json={"refresh_token": owner["refresh_token"]})
    assert refreshed.status_code == 401
    # The address is free again.
    assert (await _signup(c, "leaving@example.com"))["user"]["id"] != owner["user"]["id"]
