"""Imports by URL through the worker: the original is kept under originals/, a forbidden
address fails the job once without any request reaching it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from videoforge.gallery.schemas import UploadRequest
from videoforge.gallery.uploads import issue_upload
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra, build_infra
from videoforge.infra.storage.keys import import_key, output_prefix, user_segment
from videoforge.messages import JobStatus

from .conftest import Stack, running_worker
from .video_server import VideoServer

S = JobStatus


@pytest.fixture
async def import_infra(stack: Stack, video_server: VideoServer) -> AsyncIterator[Infra]:
    """The stack with the test server's port allowed for imports."""
    infra = await build_infra(stack.with_settings(IMPORT_ALLOWED_PORTS=str(video_server.port)))
    try:
        yield infra
    finally:
        await infra.aclose()


async def test_import_keeps_the_original_and_completes(
    stack: Stack, import_infra: Infra, video_server: VideoServer, clip: Path
) -> None:
    job = await stack.new_job(video_server.url)
    async with running_worker(import_infra, fetch_allow_addresses=["127.0.0.1"]):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
    assert done.status is S.COMPLETED, done.error_text
    expected_key = import_key("u1", job.video_id, job.id)
    assert done.source_key == expected_key
    assert expected_key.startswith("originals/u1/")
    assert await stack.infra.storage.get_bytes(expected_key) == clip.read_bytes()
    info = await stack.infra.storage.head(expected_key)
    assert info is not None
    assert info.content_type == "video/mp4"
    assert video_server.hits == 1
    events = await stack.events(job.id)
    assert events[-1].status is S.COMPLETED
    assert events[-1].source_key == expected_key
    assert await stack.keys(output_prefix(job.id))
    assert stack.workdirs() == []


async def test_an_import_and_an_upload_of_one_odd_user_id_share_its_key_segment(
    stack: Stack, import_infra: Infra, video_server: VideoServer
) -> None:
    # Taken raw, this id would add segments and fail key validation ("..").
    odd = "auth0|ünï/../x"
    job = await stack.new_job(video_server.url, user_id=odd)
    async with running_worker(import_infra, fetch_allow_addresses=["127.0.0.1"]):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=90)
    assert done.status is S.COMPLETED, done.error_text
    async with session_scope(stack.infra.sessions) as session:
        ticket = await issue_upload(
            session,
            stack.infra.storage,
            stack.settings,
            Principal(user_id=odd),
            UploadRequest(filename="a.mp4", content_type="video/mp4", size=1000),
        )
    assert done.source_key is not None
    segment = ["originals", user_segment(odd)]
    assert done.source_key.split("/")[:2] == ticket.key.split("/")[:2] == segment
    assert await stack.infra.storage.head(done.source_key) is not None


async def test_import_from_a_private_address_fails_once_and_reaches_nothing(
    stack: Stack, import_infra: Infra, video_server: VideoServer
) -> None:
    job = await stack.new_job(video_server.url)
    async with running_worker(import_infra):  # no test allowance: loopback is forbidden
        failed = await stack.wait_status(job.id, {S.FAILED, S.COMPLETED}, timeout=60)
    assert failed.status is S.FAILED
    assert failed.error_code
    assert failed.error_code != "gave_up"
    assert failed.attempts == 1
    assert video_server.hits == 0
    assert await stack.keys("originals/") == []
    assert await stack.jobs_queue_empty()
    assert stack.workdirs() == []
