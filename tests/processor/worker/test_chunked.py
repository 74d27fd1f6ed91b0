"""A long video split into parts (issue 15, section 4) through the real worker, queue,
storage and ffmpeg on the embedded backend: one COMPLETED job, parts cancelled with it,
a redelivered part counted once."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import m3u8
import pytest

from videoforge.infra.db import session_scope
from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import Job, list_jobs, request_cancel
from videoforge.jobs.events import publish_job
from videoforge.messages import JobStatus
from videoforge.processor.config import ProcessingConfig

from .conftest import Stack, running_worker

S = JobStatus

pytestmark = pytest.mark.parametrize("stack_env", ["embedded"], indirect=True)


def _gop_clip(path: Path, seconds: float) -> Path:
    """A source with a keyframe every second (so it can be cut anywhere on the grid)."""
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:d={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k", "-shortest", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gop_clip(tmp_path_factory.mktemp("chunked") / "twenty.mp4", 20)


def _config(stack: Stack) -> ProcessingConfig:
    # 20 s in parts of 8 s: [0, 8), [8, 16), [16, 20).
    return ProcessingConfig.from_settings(stack.settings, chunk_min_seconds=10, chunk_seconds=8)


async def _parts(stack: Stack, parent: uuid.UUID) -> list[Job]:
    from sqlalchemy import select

    async with stack.infra.sessions() as session:
        rows = await session.execute(
            select(Job).where(Job.parent_id == parent).order_by(Job.part_index)
        )
        return list(rows.scalars())


async def test_a_long_video_is_encoded_in_parts_and_completes_once(
    stack: Stack, twenty: Path
) -> None:
    key = await stack.upload(twenty)
    job = await stack.new_job(key)
    async with running_worker(stack.infra, concurrency=2, config=_config(stack)):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=240)
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert done.parts_total == 3 and done.parts_done == 3
    assert done.duration is not None and 19.5 < done.duration < 20.5
    parts = await _parts(stack, job.id)
    assert [(p.part_index, p.part_start, p.part_end, p.status) for p in parts] == [
        (0, 0.0, 8.0, S.COMPLETED),
        (1, 8.0, 16.0, S.COMPLETED),
        (2, 16.0, None, S.COMPLETED),
    ]
    assert all(p.video_id is None and p.attempts == 1 for p in parts)

    prefix = output_prefix(job.id)
    keys = await stack.keys(prefix)
    assert f"{prefix}hls/master.m3u8" in keys
    assert f"{prefix}hls/manifest.mpd" in keys
    assert not [k for k in keys if k.startswith(f"{prefix}parts/")]  # cleaned up
    master = m3u8.loads((await stack.infra.storage.get_bytes(f"{prefix}hls/master.m3u8")).decode())
    assert master.is_variant and master.playlists
    for variant in master.playlists:
        text = await stack.infra.storage.get_bytes(f"{prefix}hls/{variant.uri}")
        media = m3u8.loads(text.decode())
        assert media.is_endlist and media.playlist_type == "vod"
        names = [s.uri for s in media.segments]
        # Every part's segments, in order, under the one init segment.
        assert [n.split("_", 1)[0] for n in names] == sorted(n.split("_", 1)[0] for n in names)
        assert {n.split("_", 1)[0] for n in names} == {"p0000", "p0001", "p0002"}
        assert [s.init_section.uri for s in media.segments] == ["init.mp4"] * len(names)
        assert abs(sum(s.duration for s in media.segments) - 20.0) < 0.05
        assert all(f"{prefix}hls/{variant.uri.rsplit('/', 1)[0]}/{n}" in keys for n in names)

    # The gallery sees one job: its events, none of its parts'.
    events = await stack.events()
    assert {e.job_id for e in events} == {job.id}
    assert [e.status for e in events].count(S.COMPLETED) == 1
    progress = [e.progress for e in events]
    assert progress == sorted(progress)
    # The user's job list has the video's job only.
    async with stack.infra.sessions() as session:
        page = await list_jobs(session, "u1")
    assert [j.id for j in page.items] == [job.id]


async def test_cancelling_a_chunked_job_cancels_every_part(stack: Stack, twenty: Path) -> None:
    key = await stack.upload(twenty)
    job = await stack.new_job(key)
    async with running_worker(stack.infra, concurrency=1, config=_config(stack)):
        # Once the parent has split itself, its parts exist; cancel then.
        for _ in range(2400):
            if (await stack.job(job.id)).parts_total:
                break
            await __import__("asyncio").sleep(0.05)
        async with session_scope(stack.infra.sessions) as session:
            await request_cancel(session, job.id)
        done = await stack.wait_status(job.id, {S.CANCELLED, S.COMPLETED, S.FAILED}, timeout=120)
        assert done.status is S.CANCELLED
        parts = await _parts(stack, job.id)
        assert len(parts) == 3
        for part in parts:
            ended = await stack.wait_status(part.id, {S.CANCELLED, S.COMPLETED, S.FAILED})
            assert ended.status is S.CANCELLED
    await publish_job(stack.infra.queues, done)
