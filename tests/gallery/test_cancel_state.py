"""A cancelled run leaves a consistent video: no progress of the stopped run."""

from __future__ import annotations

import uuid
from datetime import timedelta

from videoforge.gallery.models import VideoStatus
from videoforge.infra.runtime import Infra
from videoforge.messages import JobStatus

from .conftest import SeedVideo, Users
from .test_events import apply, event, reload, uploaded


async def test_cancel_mid_run_resets_progress(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    job = uuid.uuid4()
    await apply(infra, event(video, job, 1, JobStatus.PROCESSING, progress=24))
    assert (await reload(infra, video)).progress == 24
    await apply(infra, event(video, job, 2, JobStatus.CANCELLED))
    fresh = await reload(infra, video)
    assert (fresh.status, fresh.progress, fresh.failure_reason) == (VideoStatus.UPLOADED, 0, None)


async def test_cancelled_reprocess_of_a_ready_video_is_ready_at_100(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await uploaded(seed_video, users)
    first, second = uuid.uuid4(), uuid.uuid4()
    await apply(infra, event(video, first, 0, JobStatus.COMPLETED))
    later = timedelta(hours=1)
    await apply(infra, event(video, second, 0, JobStatus.PROCESSING, progress=37, later=later))
    await apply(infra, event(video, second, 1, JobStatus.CANCELLED, later=later))
    fresh = await reload(infra, video)
    assert (fresh.status, fresh.progress) == (VideoStatus.READY, 100)
