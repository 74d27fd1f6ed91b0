"""The gateway in front of the real gallery app (both served by uvicorn on loopback,
sharing the database and the embedded object store): an upload goes through the
gateway's proxy, and a job for the video is authorised by asking the gallery."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra, build_infra
from videoforge.jobs import Job

from .conftest import CHEAP_HASHER, make_settings, serve


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "tiny.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


async def _upload(client: httpx.AsyncClient, token: str, data: bytes, title: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    ticket = await client.post(
        "/api/upload/url",
        json={"filename": "tiny.mp4", "content_type": "video/mp4", "size": len(data)},
        headers=auth,
    )
    assert ticket.status_code == 201, ticket.text
    single = ticket.json()["single"]
    assert single is not None
    posted = await client.post(
        single["url"], data=single["fields"], files={"file": ("tiny.mp4", data, "video/mp4")}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    confirmed = await client.post(
        "/api/upload/confirm", json={"key": ticket.json()["key"], "title": title}, headers=auth
    )
    assert confirmed.status_code == 201, confirmed.text
    video: dict[str, Any] = confirmed.json()
    return video


async def test_upload_through_the_proxy_then_a_job_checked_with_the_gallery(
    tmp_path: Path, sqlite_url: str, clip: bytes
) -> None:
    from videoforge.gallery.app import create_app as create_gallery
    from videoforge.gateway.app import create_app as create_gateway
    from videoforge.gateway.deps import GatewayOptions

    base = make_settings(tmp_path, sqlite_url)
    infra: Infra = await build_infra(base, with_signing_key=True)
    try:
        async with serve(create_gallery(base, infra)) as gallery_url:
            settings = base.model_copy(update={"gallery_url": gallery_url})
            gateway = create_gateway(
                settings, infra, options=GatewayOptions(password_hasher=CHEAP_HASHER)
            )
            async with serve(gateway) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
                owner = (
                    await c.post(
                        "/api/auth/signup",
                        json={"email": "own@example.com", "password": "long enough 1"},
                    )
                ).json()
                other = (
                    await c.post(
                        "/api/auth/signup",
                        json={"email": "oth@example.com", "password": "long enough 1"},
                    )
                ).json()
                video = await _upload(c, owner["access_token"], clip, "Tiny")
                assert video["user_id"] == owner["user"]["id"]

                refused = await c.post(
                    "/api/jobs",
                    json={"video_id": video["id"]},
                    headers={"Authorization": f"Bearer {other['access_token']}"},
                )
                assert refused.status_code == 404
                assert refused.json()["error"]["code"] == "video_not_found"

                created = await c.post(
                    "/api/jobs",
                    json={"video_id": video["id"]},
                    headers={"Authorization": f"Bearer {owner['access_token']}"},
                )
                assert created.status_code == 201, created.text
                job = created.json()
                assert job["video_id"] == video["id"]
                assert job["input_source"] == video["s3_key"]

                imported = await c.post(
                    "/api/jobs",
                    json={"source_url": "https://media.example.com/a/clip.mp4"},
                    headers={"Authorization": f"Bearer {owner['access_token']}"},
                )
                assert imported.status_code == 201, imported.text
                seen = await c.get(
                    f"/api/gallery/videos/{imported.json()['video_id']}",
                    headers={"Authorization": f"Bearer {owner['access_token']}"},
                )
                assert seen.status_code == 200
                assert seen.json()["source_url"] == "https://media.example.com/a/clip.mp4"
                assert seen.json()["title"] == "clip.mp4"
        async with session_scope(infra.sessions) as session:
            row = await session.get(Job, uuid.UUID(job["id"]))
            assert row is not None
            assert row.input_source == video["s3_key"]
    finally:
        await infra.aclose()
