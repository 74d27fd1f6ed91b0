"""Watching a video while it is still processing (issue 15), in a real Chromium.

The platform's worker encodes a 854x480 clip (two rungs); its ladder ffmpeg is stepped
(resumed for a moment, frozen again) until the gallery says the video is playable, then
held frozen: the video is processing, for certain, for as long as the test looks. The
watch page must play it from the start at the lowest quality with a note that higher
qualities are still coming; once the worker is let go and the video is ready, the page
switches to the full ladder by itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from .api_user import ApiUser

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
HAS_METADATA = "() => document.querySelector('video')?.readyState >= 1"
HEIGHTS = "() => [...new Set(window.vfPlayer.getVariantTracks().map((t) => t.height))].sort()"


@pytest.fixture(scope="module")
def clip(clip_factory: Callable[..., Path], clips_dir: Path) -> Path:
    return clip_factory(clips_dir / "Harbour at dawn.mp4", seconds=40, size="854x480")


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


def _step_until_playable(platform: Any, user: ApiUser, video_id: str, pid: int) -> None:
    """Let the held ladder run a little at a time until the video is playable (its
    first segments stored), and leave it frozen."""
    ladder = psutil.Process(pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ladder.resume()
        time.sleep(0.3)
        ladder.suspend()
        for _ in range(10):  # the worker stores what is finished, the gallery hears it
            video = user.http.get(f"/api/gallery/videos/{video_id}").json()
            if video["playable"]:
                assert video["status"] == "processing", video
                return
            time.sleep(0.2)
    raise AssertionError(f"the video never became playable:\n{platform.log_tail()}")


def test_a_processing_video_plays_at_once_then_gets_every_quality(
    platform: Any, context: Any, clip: Path, screenshots: Path
) -> None:
    user = ApiUser(platform.url, f"early-{uuid.uuid4().hex[:10]}@example.com")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        job = user.upload(clip, title="Harbour at dawn")
        video_id = job["video_id"]
        pid = platform.hold_transcode()
        _step_until_playable(platform, user, video_id, pid)

        page.goto(f"{platform.url}/watch/{video_id}")
        note = page.locator('.notice[data-state="growing"]')
        note.wait_for()
        assert "Higher qualities are still coming" in note.inner_text()
        page.wait_for_function(HAS_METADATA)
        assert page.evaluate("document.querySelector('video').dataset.engine") == "hls"
        assert page.evaluate(HEIGHTS) == [360]  # the lowest rung only, for now
        page.locator(".shaka-play-button").click()
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.3")
        # It started at the beginning, not at the live edge of the growing playlist.
        assert page.evaluate("document.querySelector('video').currentTime") < 4
        assert user.http.get(f"/api/gallery/videos/{video_id}").json()["status"] == "processing"
        page.screenshot(path=screenshots / "watch-while-processing.png")

        platform.release_held()
        user.wait_video(video_id, "ready", timeout=120)
        page.wait_for_function(f"() => ({HEIGHTS})().length === 2", timeout=60_000)
        assert page.evaluate(HEIGHTS) == [360, 480]
        note.wait_for(state="hidden")
        page.wait_for_function("() => !document.querySelector('video').paused")
        assert errors == []
    finally:
        platform.release_held()
        page.close()
        user.close()
