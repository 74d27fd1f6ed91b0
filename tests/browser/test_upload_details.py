"""The upload details step in a real Chromium against the real platform (one worker,
real ffmpeg): the creator types a title while the file is still uploading, chooses
"Publish when ready", picks the second of the pipeline's thumbnail candidates, and a
stranger then finds the video public with that thumbnail (and not before it is ready).
"My videos" shows drafts and scheduled videos for what they are; axe-core finds no
serious problem on the page with the details form and the thumbnail choices open.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import AXE, axe, log_in, watch

pytestmark = pytest.mark.browser

WIDE = {"width": 1440, "height": 900}
#: Bytes per second the page may send while the title is typed (Chromium's throttling):
#: the 10 MB upload then takes several seconds.
SLOW_UPLOAD = 1_000_000


def _open(browser: Any) -> tuple[Any, Any, list[str]]:
    # The site's CSP allows no inline script: let the test inject axe-core anyway.
    context = browser.new_context(viewport=WIDE, bypass_csp=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    return context, page, watch(page, [])


def test_details_while_uploading_publish_when_ready_and_a_chosen_thumbnail(
    platform: Any,
    browser: Any,
    clip_factory: Callable[..., Path],
    clips_dir: Path,
    screenshots: Path,
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:8]
    user = ApiUser(base, f"details-{token}@example.com")
    playlist = user.http.post("/api/gallery/playlists", json={"title": f"Trips {token}"}).json()
    # Multipart (over the 6 MiB threshold), and long enough for its ladder to be held.
    clip = clip_factory(
        clips_dir / f"harbour_walk_{token}.mp4", seconds=12, size="640x360", pad_bytes=10 << 20
    )
    title = f"Harbour walk at dawn {token}"
    context, page, errors = _open(browser)
    stranger = httpx.Client(base_url=base, timeout=30)
    try:
        log_in(page, base, user.email, then="/my")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": SLOW_UPLOAD,
            },
        )
        page.locator(".dropzone input[type=file]").set_input_files(str(clip))
        row = page.locator("li.upload", has_text=clip.name)
        row.locator('xpath=self::*[@data-state="uploading"]').wait_for()
        form = row.get_by_role("form", name=f"Details of {clip.name}")
        # Prefilled from the file name.
        assert form.get_by_label("Title").input_value() == f"harbour walk {token}"

        form.get_by_label("Title").fill(title)
        form.get_by_label("Description").fill("The fishing boats come in.")
        form.get_by_label("Publish when ready").check()
        form.get_by_label("Comments").select_option("held")
        form.get_by_label(f"Trips {token}").check()
        form.get_by_label("Title").press("Tab")
        # All of it was chosen while the bytes were still on their way.
        assert row.get_attribute("data-state") == "uploading"
        page.screenshot(path=screenshots / "upload-details-while-uploading.png", full_page=True)
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

        # Processing is held: the video exists, with the details, and nobody else sees it.
        platform.hold_transcode(timeout=120)
        row.locator(".upload__publish", has_text="Publishes when ready").wait_for()
        (video,) = [
            v
            for v in user.http.get("/api/gallery/videos", params={"owner": "me"}).json()["items"]
            if v["original_filename"] == clip.name
        ]
        video_id = video["id"]
        assert (video["title"], video["description"]) == (title, "The fishing boats come in.")
        assert (video["publish_state"], video["comment_policy"]) == ("when_ready", "held")
        assert stranger.get(f"/api/gallery/videos/{video_id}").status_code == 404
        entries = user.http.get(f"/api/gallery/playlists/{playlist['id']}/videos").json()
        assert [item["video_id"] for item in entries["items"]] == [video_id]
        mine = page.locator("li.video-row", has_text=title)
        mine.locator("[data-publish=when_ready]").wait_for()

        platform.release_held()
        row.locator('xpath=self::*[@data-job="ready"]').wait_for(timeout=120_000)
        choices = row.get_by_role("group", name="Thumbnail choices")
        choices.get_by_role("button").nth(2).wait_for(timeout=30_000)
        assert choices.get_by_role("button").count() == 3
        second = choices.get_by_role("button", name="Thumbnail choice 2")
        second.click()
        row.get_by_text("Thumbnail 2 chosen.").wait_for()
        assert second.get_attribute("aria-pressed") == "true"
        page.screenshot(path=screenshots / "upload-details-thumbnail.png", full_page=True)
        assert AXE.exists()
        assert axe(page, "my videos with upload details") == []

        # A stranger finds it public, with the chosen thumbnail.
        seen = stranger.get(f"/api/gallery/videos/{video_id}")
        assert seen.status_code == 200
        assert seen.json()["publish_state"] == "published"
        assert "/thumbnails/2.jpg" in seen.json()["thumbnail_url"]
        assert seen.json()["thumbnail_candidates"] == []
        visitor = browser.new_context(viewport=WIDE)
        try:
            other = visitor.new_page()
            other.goto(f"{base}/")
            card = other.locator(".grid > li", has_text=title)
            card.wait_for()
            src = card.locator("img").first.get_attribute("src")
            assert src is not None
            assert "/thumbnails/2.jpg" in src
            other.screenshot(path=screenshots / "upload-details-public.png")
        finally:
            visitor.close()
        assert errors == []
    finally:
        platform.release_held()
        stranger.close()
        user.close()
        context.close()


def test_my_videos_shows_drafts_and_scheduled_videos(
    platform: Any,
    browser: Any,
    clip_factory: Callable[..., Path],
    clips_dir: Path,
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:8]
    user = ApiUser(base, f"drafts-{token}@example.com")
    clip = clip_factory(clips_dir / f"short-{token}.mp4", seconds=1)
    draft = user.upload(clip, title=f"Draft {token}")["video_id"]
    later = user.upload(clip, title=f"Later {token}")["video_id"]
    when = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    assert user.http.put(f"/api/gallery/videos/{draft}", json={"publish": "draft"}).is_success
    r = user.http.put(
        f"/api/gallery/videos/{later}",
        json={"publish": "schedule", "publish_at": when.isoformat()},
    )
    assert r.is_success, r.text
    context, page, errors = _open(browser)
    try:
        log_in(page, base, user.email, then="/my")
        draft_row = page.locator("li.video-row", has_text=f"Draft {token}")
        assert draft_row.locator("[data-publish=draft]").inner_text() == "Draft"
        later_row = page.locator("li.video-row", has_text=f"Later {token}")
        badge = later_row.locator("[data-publish=scheduled]")
        assert badge.inner_text().startswith("Scheduled for ")
        stamp = badge.locator("time").get_attribute("datetime")
        assert stamp is not None
        assert datetime.fromisoformat(stamp) == when

        draft_row.get_by_role("button", name="Publish now").click()
        draft_row.locator("[data-publish]").wait_for(state="detached")
        assert user.http.get(f"/api/gallery/videos/{draft}").json()["publish_state"] == "published"

        # The editor says when a video is public, and changes it.
        later_row.get_by_role("button", name="Edit").click()
        dialog = page.get_by_role("dialog")
        assert dialog.get_by_label("When to publish").input_value() == "schedule"
        assert dialog.get_by_label("Publish at").is_visible()
        dialog.get_by_label("When to publish").select_option("draft")
        assert not dialog.get_by_label("Publish at").is_visible()
        dialog.get_by_role("button", name="Save").click()
        later_row.locator("[data-publish=draft]").wait_for()
        assert user.http.get(f"/api/gallery/videos/{later}").json()["publish_state"] == "draft"
        assert errors == []
    finally:
        user.close()
        context.close()
