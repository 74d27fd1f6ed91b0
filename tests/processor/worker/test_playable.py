"""A real worker stores segments while it encodes and says when the job is watchable
(issue 15): the event that says so comes while the job is still PROCESSING, and every
segment its playlists list is in storage by then. Cancelled, the job's outputs go."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from videoforge.infra.db import session_scope
from videoforge.infra.storage.keys import output_prefix
from videoforge.jobs import request_cancel
from videoforge.messages import JobEvent, JobStatus
from videoforge.processor.progressive import listed_segments

from .conftest import Stack, running_worker

S = JobStatus


async def _first_playable(stack: Stack, job_id: object, timeout: float = 90) -> JobEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in await stack.events() if e.job_id == job_id and e.playable]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no event said the job was playable")


async def test_segments_are_stored_and_announced_while_the_job_runs(
    stack: Stack, long_clip: Path
) -> None:
    key = await stack.upload(long_clip)
    job = await stack.new_job(key)
    async with running_worker(stack.infra):
        event = await _first_playable(stack, job.id)
        assert event.status is S.PROCESSING
        assert event.playable is not None
        prefix = output_prefix(job.id)
        assert event.playable.master_key == f"{prefix}hls/master.m3u8"
        [lowest] = event.playable.renditions
        assert lowest.quality == "mobile"
        assert lowest.codecs.startswith("avc1.")
        assert lowest.segments >= 1
        assert [a.playlist_key for a in event.playable.audio_tracks] == [
            f"{prefix}hls/audio-0/index.m3u8"
        ]
        # Whatever the stored playlists list is stored too, and they are still growing.
        for playlist_key in [lowest.playlist_key, event.playable.audio_tracks[0].playlist_key]:
            text = (await stack.infra.storage.get_bytes(playlist_key)).decode()
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text
            assert "#EXT-X-ENDLIST" not in text
            folder = playlist_key.rsplit("/", 1)[0]
            listed = listed_segments(text)
            assert listed
            for name in ["init.mp4", *(n for n, _ in listed)]:
                assert await stack.infra.storage.head(f"{folder}/{name}") is not None, name
        assert (await stack.job(job.id)).status is S.PROCESSING

        async with session_scope(stack.infra.sessions) as session:
            await request_cancel(session, job.id)
        cancelled = await stack.wait_status(job.id, {S.CANCELLED, S.COMPLETED}, timeout=30)
    assert cancelled.status is S.CANCELLED
    assert await stack.keys(output_prefix(job.id)) == []
    assert stack.workdirs() == []
