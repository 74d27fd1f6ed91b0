"""Storage figures through the real pipeline: a clip uploaded through the gateway,
processed by a real worker (ffmpeg) and applied by the gallery's event consumer; the
video's ``storage_bytes``, the user's total on ``/api/auth/me`` and the object store's
own listing agree after processing, after a re-process and after the delete."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from videoforge.gallery.events import consume_once
from videoforge.infra.runtime import Infra, build_infra
from videoforge.processor.worker import Worker

from .conftest import CHEAP_HASHER, make_settings, serve
from .test_with_gallery import _upload, clip  # noqa: F401 - the clip fixture

pytestmark = pytest.mark.integration


async def _listed(infra: Infra, *prefixes: str) -> int:
    total = 0
    for prefix in prefixes:
        async for info in infra.storage.list(prefix):
            total += info.size
    return total


async def _until_ready(
    c: httpx.AsyncClient, infra: Infra, video_id: str, job_id: str, auth: dict[str, str]
) -> dict[str, Any]:
    for _ in range(600):
        await consume_once(infra, wait_seconds=0.1)
        video: dict[str, Any] = (
            await c.get(f"/api/gallery/videos/{video_id}", headers=auth)
        ).json()
        job = (await c.get(f"/api/jobs/{job_id}", headers=auth)).json()
        if job["status"] == "COMPLETED" and video["status"] == "ready":
            return video
        assert job["status"] not in ("FAILED", "CANCELLED"), job
    raise AssertionError("the video did not become ready")


@pytest.fixture
async def stack(tmp_path: Path, sqlite_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Infra]]:
    from videoforge.gallery.app import create_app as create_gallery
    from videoforge.gateway.app import create_app as create_gateway
    from videoforge.gateway.deps import GatewayOptions

    base = make_settings(tmp_path, sqlite_url, QUEUE_VISIBILITY_TIMEOUT="30")
    infra = await build_infra(base, with_signing_key=True)
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(infra, receive_wait=0.2).run(stop))
    try:
        async with serve(create_gallery(base, infra)) as gallery_url:
            settings = base.model_copy(update={"gallery_url": gallery_url})
            gateway = create_gateway(
                settings, infra, options=GatewayOptions(password_hasher=CHEAP_HASHER)
            )
            async with serve(gateway) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
                yield c, infra
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(worker, timeout=30)
        await infra.aclose()


async def test_storage_figures_match_the_store_through_the_real_pipeline(
    stack: tuple[httpx.AsyncClient, Infra],
    clip: bytes,  # noqa: F811
) -> None:
    c, infra = stack
    session = (
        await c.post(
            "/api/auth/signup", json={"email": "pipe@example.com", "password": "long enough 1"}
        )
    ).json()
    auth = {"Authorization": f"Bearer {session['access_token']}"}
    video = await _upload(c, session["access_token"], clip, "Pipeline")
    original_dir = video["s3_key"].rsplit("/", 1)[0] + "/"

    first = (await c.post("/api/jobs", json={"video_id": video["id"]}, headers=auth)).json()
    ready = await _until_ready(c, infra, video["id"], first["id"], auth)
    listed = await _listed(infra, original_dir, f"outputs/{first['id']}/")
    assert listed > len(clip)  # renditions, playlists and stills were stored
    assert ready["storage_bytes"] == listed
    me = (await c.get("/api/auth/me", headers=auth)).json()
    assert me["storage_used_bytes"] == listed

    second = (await c.post("/api/jobs", json={"video_id": video["id"]}, headers=auth)).json()
    assert second["id"] != first["id"], second
    ready = await _until_ready(c, infra, video["id"], second["id"], auth)
    listed = await _listed(
        infra, original_dir, f"outputs/{first['id']}/", f"outputs/{second['id']}/"
    )
    assert ready["storage_bytes"] == listed
    assert (await c.get("/api/auth/me", headers=auth)).json()["storage_used_bytes"] == listed

    assert (await c.delete(f"/api/gallery/videos/{video['id']}", headers=auth)).status_code == 204
    assert await _listed(infra, original_dir, "outputs/") == 0
    assert (await c.get("/api/auth/me", headers=auth)).json()["storage_used_bytes"] == 0
