"""The per-video loudness choice in the upload form: unticking "Normalise loudness" while
the file uploads starts its job with ``loudness_normalization`` false (the worker then
keeps the audio's own level: tests/processor/worker/test_job_choices.py); left ticked,
the job normalises. Once processing has started the box is fixed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import DESKTOP, log_in, watch

pytestmark = pytest.mark.browser

#: Bytes per second while the box is unticked (Chromium's throttling): the 3 MB upload
#: then takes a few seconds.
SLOW_UPLOAD = 1_000_000


def _throttle(cdp: Any, upload: int) -> None:
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": upload},
    )


def _job_of(user: ApiUser, filename: str) -> dict[str, Any]:
    items = user.http.get("/api/gallery/videos", params={"owner": "me"}).json()["items"]
    (video,) = [v for v in items if v["original_filename"] == filename]
    return user.job_of(str(video["id"]))


def test_unticking_normalise_loudness_starts_a_job_without_it(
    platform: Any, browser: Any, clip_factory: Callable[..., Path], clips_dir: Path
) -> None:
    token = uuid.uuid4().hex[:8]
    user = ApiUser(platform.url, f"loudness-{token}@example.com")
    kept = clip_factory(clips_dir / f"concert_{token}.mp4", seconds=1, pad_bytes=3 << 20)
    normal = clip_factory(clips_dir / f"vlog_{token}.mp4", seconds=1)
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        problems = watch(page, [])
        log_in(page, platform.url, user.email, then="/my")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        _throttle(cdp, SLOW_UPLOAD)
        page.locator(".dropzone input[type=file]").set_input_files(str(kept))
        row = page.locator("li.upload", has_text=kept.name)
        row.locator('xpath=self::*[@data-state="uploading"]').wait_for()
        box = row.get_by_label("Normalise loudness")
        assert box.is_checked()  # on unless the owner says otherwise
        box.uncheck()
        assert row.get_attribute("data-state") == "uploading"
        _throttle(cdp, -1)
        row.locator('xpath=self::*[@data-state="done"]').wait_for(timeout=60_000)
        assert box.is_disabled()
        row.get_by_text("Processing keeps the audio as it is.").wait_for()
        assert _job_of(user, kept.name)["loudness_normalization"] is False

        page.locator(".dropzone input[type=file]").set_input_files(str(normal))
        other = page.locator("li.upload", has_text=normal.name)
        other.locator('xpath=self::*[@data-state="done"]').wait_for(timeout=60_000)
        assert _job_of(user, normal.name)["loudness_normalization"] is True
        assert problems == []
    finally:
        context.close()
        user.close()
