"""Timestamps in a video's description are links that seek the player, as on YouTube:
a click plays from there, a time past the end or inside a word stays text, and the
description's web links are still links."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import watch

pytestmark = pytest.mark.browser

DESCRIPTION = (
    "Intro at 0:00, the good part at 0:12 (see https://example.com/notes).\n"
    "Not a time: 1:02:03 is past the end, and we met at 10:00am."
)


def test_description_timestamps_seek_the_player(
    platform: Any, context: Any, clip_factory: Callable[..., Path], tmp_path: Path
) -> None:
    user = ApiUser(platform.url, f"times-{uuid.uuid4().hex[:10]}@example.com")
    try:
        clip = clip_factory(tmp_path / "times.mp4", seconds=20, size="160x120")
        job = user.upload(clip, title="Timestamps", description=DESCRIPTION)
        user.wait_video(str(job["video_id"]), "ready", timeout=180)
    finally:
        user.close()
    page = context.new_page()
    problems = watch(page, [])
    page.goto(f"{platform.url}/watch/{job['video_id']}")
    page.wait_for_function("() => window.vfPlayer && window.vfPlayer.getVariantTracks().length")
    description = page.locator(".watch__description")
    stamps = description.locator("a.timestamp")
    assert stamps.all_inner_texts() == ["0:00", "0:12"]
    assert stamps.evaluate_all("as => as.map(a => a.getAttribute('href'))") == ["?t=0", "?t=12"]
    link = description.get_by_role("link", name="https://example.com/notes")
    assert link.get_attribute("href") == "https://example.com/notes"
    assert "1:02:03 is past the end" in description.inner_text()

    stamps.nth(1).click()
    page.wait_for_function(
        "() => { const v = document.querySelector('video');"
        " return !v.paused && v.currentTime >= 12 && v.currentTime < 15; }"
    )
    assert page.url.endswith(f"/watch/{job['video_id']}")  # no navigation, just a seek
    assert problems == []
