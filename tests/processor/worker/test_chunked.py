"""A long video split into parts (issue 15, section 4) through the real worker, queue,
storage and ffmpeg on the embedded backend: one COMPLETED job, parts cancelled with it,
a redelivered part counted once."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import uuid
from pathlib import Path

import m3u8
import pytest

from videoforge.infra.db import session_scope
from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import Job, list_jobs, request_cancel
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
    assert done.parts_total == 3
    assert done.parts_done == 3
    assert done.duration is not None
    assert 19.5 < done.duration < 20.5
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
    # What the parent made once for the whole video (the storyboard from its keyframes).
    for shared in ("storyboard/thumbnails.vtt", "storyboard/sprite_0.jpg", "thumbnail.jpg"):
        assert f"{prefix}{shared}" in keys
    assert f"{prefix}hls/audio-0/index.m3u8" in keys
    assert not [k for k in keys if k.startswith(f"{prefix}parts/")]  # cleaned up
    master = m3u8.loads((await stack.infra.storage.get_bytes(f"{prefix}hls/master.m3u8")).decode())
    assert master.is_variant
    assert master.playlists
    for variant in master.playlists:
        text = await stack.infra.storage.get_bytes(f"{prefix}hls/{variant.uri}")
        media = m3u8.loads(text.decode())
        assert media.is_endlist
        assert media.playlist_type == "vod"
        names = [str(s.uri) for s in media.segments]
        # Every part's segments, in order, under the one init segment.
        assert [n.split("_", 1)[0] for n in names] == sorted(n.split("_", 1)[0] for n in names)
        assert {n.split("_", 1)[0] for n in names} == {"p0000", "p0001", "p0002"}
        assert [s.init_section and s.init_section.uri for s in media.segments] == [
            "init.mp4"
        ] * len(names)
        assert abs(sum(s.duration or 0 for s in media.segments) - 20.0) < 0.05
        folder = str(variant.uri).rsplit("/", 1)[0]
        assert all(f"{prefix}hls/{folder}/{n}" in keys for n in names)

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


def _packets(path: Path, stream: str) -> list[tuple[float, float]]:
    """(pts, duration) of every packet of ``stream`` (``v:0``, ``a:0``), in pts order."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
         "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return sorted((float(pts), float(duration)) for pts, duration, *_ in rows)


async def _rung_files(
    stack: Stack, job_id: uuid.UUID, quality: str, into: Path
) -> tuple[Path, Path]:
    """The rung's HLS segments joined after its init segment, and its MP4 download."""
    prefix = output_prefix(job_id)
    storage = stack.infra.storage
    media = m3u8.loads((await storage.get_bytes(f"{prefix}hls/{quality}/index.m3u8")).decode())
    joined = into / f"{quality}-hls.mp4"
    folder = into / quality
    folder.mkdir()
    for name in ["index.m3u8", "init.mp4", *(str(s.uri) for s in media.segments)]:
        await storage.get_file(f"{prefix}hls/{quality}/{name}", folder / name)
    with joined.open("wb") as out:
        for name in ["init.mp4", *(str(s.uri) for s in media.segments)]:
            out.write((folder / name).read_bytes())
    mp4 = into / f"{quality}.mp4"
    await storage.get_file(f"{prefix}mp4/{quality}.mp4", mp4)
    return joined, mp4


async def test_chunked_and_unchunked_runs_give_the_same_renditions(
    stack: Stack, twenty: Path, tmp_path: Path
) -> None:
    key = await stack.upload(twenty)
    plain_config = ProcessingConfig.from_settings(stack.settings)
    plain = await stack.new_job(key)
    async with running_worker(stack.infra, concurrency=1, config=plain_config):
        done = await stack.wait_status(plain.id, {S.COMPLETED, S.FAILED}, timeout=240)
    assert done.status is S.COMPLETED
    chunked = await stack.new_job(key)
    async with running_worker(stack.infra, concurrency=2, config=_config(stack)):
        done = await stack.wait_status(chunked.id, {S.COMPLETED, S.FAILED}, timeout=240)
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert done.parts_total == 3

    # DASH over the same segments: the same timeline, segment for segment.
    timelines = []
    for job_id in (plain.id, chunked.id):
        mpd = await stack.infra.storage.get_bytes(f"{output_prefix(job_id)}hls/manifest.mpd")
        timelines.append(re.findall(rb"<S [^>]*>", mpd))
    assert timelines[0]
    assert timelines[1] == timelines[0]

    frame = 1 / 25
    joins = (8.0, 16.0)
    for quality in ("source",):
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        plain_hls, plain_mp4 = await _rung_files(stack, plain.id, quality, tmp_path / "a")
        parts_hls, parts_mp4 = await _rung_files(stack, chunked.id, quality, tmp_path / "b")
        for reference, candidate in ((plain_hls, parts_hls), (plain_mp4, parts_mp4)):
            want, got = _packets(reference, "v:0"), _packets(candidate, "v:0")
            # The same frames (count, duration within a frame) at the same times...
            assert len(got) == len(want) == 500
            span = got[-1][0] + got[-1][1] - got[0][0]
            assert abs(span - (want[-1][0] + want[-1][1] - want[0][0])) <= frame
            assert max(abs(g[0] - w[0]) for g, w in zip(got, want, strict=True)) < 1e-3
            # ...continuous: no gap or overlap anywhere, the joins included.
            steps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
            assert all(abs(step - frame) < 1e-3 for step in steps), steps
        # A player reading the playlist (ffmpeg's HLS demuxer) gets every frame, in order.
        played = _packets(tmp_path / "b" / quality / "index.m3u8", "v:0")
        assert len(played) == 500
        assert all(abs(b[0] - a[0] - frame) < 1e-3 for a, b in itertools.pairwise(played))
        # Audio in sync: the MP4's one audio track (encoded once for the whole video)
        # starts where the unchunked one does, as long, and the video frame at each join
        # is at the same time relative to it.
        want_audio, got_audio = _packets(plain_mp4, "a:0"), _packets(parts_mp4, "a:0")
        assert len(got_audio) == len(want_audio)
        assert abs(got_audio[0][0] - want_audio[0][0]) < 1e-3
        video_plain, video_parts = _packets(plain_mp4, "v:0"), _packets(parts_mp4, "v:0")
        for join in joins:
            at = round(join / frame)
            offset_plain = video_plain[at][0] - want_audio[0][0]
            offset_parts = video_parts[at][0] - got_audio[0][0]
            assert abs(offset_parts - offset_plain) < 1e-3, (join, offset_plain, offset_parts)
            assert abs(offset_parts - join) <= frame  # and it is the join's own frame


async def test_cancelling_a_chunked_job_cancels_every_part(stack: Stack, twenty: Path) -> None:
    key = await stack.upload(twenty)
    job = await stack.new_job(key)
    async with running_worker(stack.infra, concurrency=1, config=_config(stack)):
        # Once the parent has split itself, its parts exist; cancel then.
        for _ in range(2400):
            if (await stack.job(job.id)).parts_total:
                break
            await asyncio.sleep(0.05)
        async with session_scope(stack.infra.sessions) as session:
            await request_cancel(session, job.id)
        done = await stack.wait_status(job.id, {S.CANCELLED, S.COMPLETED, S.FAILED}, timeout=120)
        assert done.status is S.CANCELLED
        parts = await _parts(stack, job.id)
        assert len(parts) == 3
        for part in parts:
            ended = await stack.wait_status(part.id, {S.CANCELLED, S.COMPLETED, S.FAILED})
            assert ended.status is S.CANCELLED


async def test_a_part_whose_worker_died_is_redelivered_and_counted_once(
    stack: Stack, twenty: Path
) -> None:
    key = await stack.upload(twenty)
    job = await stack.new_job(key)
    worker = stack.spawn_worker(CHUNK_MIN_SECONDS="10", CHUNK_SECONDS="8")
    try:
        victim = None
        for _ in range(6000):
            running = [p for p in await _parts(stack, job.id) if p.status is S.PROCESSING]
            if running:
                victim = running[0]
                break
            await asyncio.sleep(0.01)
        assert victim is not None, "no part was seen encoding"
    finally:
        worker.kill()  # SIGKILL: no hand-back, its ffmpeg dies with it
        worker.wait(timeout=30)
    async with running_worker(stack.infra, concurrency=2, config=_config(stack)):
        done = await stack.wait_status(job.id, {S.COMPLETED, S.FAILED}, timeout=240)
    assert done.status is S.COMPLETED, (done.error_code, done.error_text)
    assert done.parts_done == done.parts_total == 3
    parts = {p.id: p for p in await _parts(stack, job.id)}
    assert all(p.status is S.COMPLETED for p in parts.values())
    assert parts[victim.id].attempts == 2  # the dead worker's attempt, then the new one
    events = await stack.events(job.id)
    assert [e.status for e in events].count(S.COMPLETED) == 1
