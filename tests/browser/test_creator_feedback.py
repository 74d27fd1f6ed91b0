"""Processing feedback where the creator is looking, and issue 14's rough edges, in a
real Chromium against the real platform (one worker, real ffmpeg).

An upload row follows its job: queued with its place in the queue (the one worker is
kept busy by someone else's held transcode), processing with a percentage and an ETA
(our own transcode held), then a link to watch. A damaged file's row says why it failed
and neither it nor "My videos" offers a retry. A forbidden import link is an error in
the form. Then the rough edges a person would notice: links in descriptions, a page
past the end, the empty gallery, wide screens, portrait quality labels; and axe-core
finds no serious or critical problem on any page.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser, grant_admin
from tests.browser.pages import AXE, DESKTOP, axe, log_in, watch

pytestmark = pytest.mark.browser

#: A file that passes the gallery's first-bytes check (an MP4 'ftyp' box) and that
#: ffprobe cannot read: the processor fails it for good.
DAMAGED_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 64
DESCRIPTION = (
    "Filmed at the harbour. Route: https://maps.example.com/harbour?from=pier&to=light. "
    "More (https://example.org/more) and <b>not bold</b> javascript:alert(1)"
)


def _open(browser: Any, **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**({"viewport": DESKTOP} | options))
    context.set_default_timeout(20_000)
    page = context.new_page()
    return context, page, watch(page, [])


@pytest.fixture(scope="module")
def busy_clip(clip_factory: Callable[..., Path], clips_dir: Path) -> Path:
    """40 s at 640x360: held mid-transcode, it keeps the one worker busy."""
    return clip_factory(clips_dir / "Feedback busy.mp4", seconds=40, size="640x360")


@pytest.fixture(scope="module")
def ready_video(
    platform: Any, clip_factory: Callable[..., Path], clips_dir: Path
) -> Iterator[tuple[ApiUser, dict[str, Any]]]:
    """A public, ready video with links in its description, and its owner."""
    token = uuid.uuid4().hex[:8]
    owner = ApiUser(platform.url, f"feedback-owner-{token}@example.com")
    clip = clip_factory(clips_dir / f"harbour-{token}.mp4", seconds=1)
    try:
        job = owner.upload(clip, title=f"Harbour {token}", description=DESCRIPTION)
        yield owner, owner.wait_video(job["video_id"], "ready")
    finally:
        owner.close()


# ------------------------------------------------------------------ processing feedback
def test_upload_row_follows_its_job_from_the_queue_to_ready(
    platform: Any,
    browser: Any,
    busy_clip: Path,
    clip_factory: Callable[..., Path],
    clips_dir: Path,
    screenshots: Path,
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:8]
    busy = ApiUser(base, f"feedback-busy-{token}@example.com")
    user = ApiUser(base, f"feedback-{token}@example.com")
    # Long enough for its ladder run to be caught and held.
    clip = clip_factory(clips_dir / f"Seagulls {token}.mp4", seconds=20, size="640x360")
    context, page, errors = _open(browser)
    busy_job: dict[str, Any] = {}
    try:
        busy_job = busy.upload(busy_clip, title=f"Busy {token}")
        platform.hold_transcode()  # the one worker is busy: our job has to wait
        log_in(page, base, user.email, then="/my")

        page.locator(".dropzone input[type=file]").set_input_files(str(clip))
        row = page.locator("li.upload", has_text=clip.name)
        # Queued, with its place and an estimate, in the row the creator is looking at.
        row.locator('xpath=self::*[@data-job="queued"]').wait_for(timeout=30_000)
        assert row.locator(".badge--status").inner_text() == "Queued"
        detail = row.locator(".upload__detail").inner_text()
        assert re.fullmatch(r"next in the queue · (about \d+ min|less than a minute) left", detail)
        assert "processing has started" not in row.inner_text()
        # "My videos" shows the same state, from the same job.
        video_row = page.locator("li.video-row", has_text=f"Seagulls {token}")
        video_row.locator(".badge--status", has_text="Queued").wait_for()
        assert "next in the queue" in video_row.locator(".video-row__detail").inner_text()
        page.screenshot(path=screenshots / "upload-row-queued.png", full_page=True)

        # The busy job goes; ours is taken and held mid-transcode.
        busy.http.post(f"/api/jobs/{busy_job['id']}/cancel")
        busy.wait_job(busy_job["id"], {"CANCELLED"})
        platform.hold_transcode()
        row.locator('xpath=self::*[@data-job="processing"]').wait_for(timeout=30_000)
        assert row.locator(".badge--status").inner_text() == "Processing"
        detail = row.locator(".upload__detail").inner_text()
        assert re.fullmatch(r"\d{1,3}% · (about \d+ min|less than a minute) left", detail), detail
        assert row.locator("progress").get_attribute("aria-label").startswith("Processing")
        page.screenshot(path=screenshots / "upload-row-processing.png", full_page=True)

        platform.release_held()
        row.locator('xpath=self::*[@data-job="ready"]').wait_for(timeout=90_000)
        assert row.locator(".badge--status").inner_text() == "Ready"
        watch = row.get_by_role("link", name="Watch now")
        href = watch.get_attribute("href")
        assert href
        assert href.startswith("/watch/")
        page.screenshot(path=screenshots / "upload-row-ready.png", full_page=True)
        watch.click()
        page.wait_for_url(f"{base}{href}")
        page.locator("h1", has_text=f"Seagulls {token}").wait_for()
        assert errors == []
    finally:
        platform.release_held()
        if busy_job:
            busy.http.post(f"/api/jobs/{busy_job['id']}/cancel")
        busy.close()
        user.close()
        context.close()


def test_a_damaged_file_says_why_and_offers_no_retry(
    platform: Any, browser: Any, tmp_path: Path, screenshots: Path
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:8]
    user = ApiUser(base, f"feedback-damaged-{token}@example.com")
    damaged = tmp_path / f"Damaged {token}.mp4"
    damaged.write_bytes(DAMAGED_MP4)
    context, page, errors = _open(browser)
    try:
        log_in(page, base, user.email, then="/my")
        page.locator(".dropzone input[type=file]").set_input_files(str(damaged))
        row = page.locator("li.upload", has_text=damaged.name)
        row.locator('xpath=self::*[@data-job="failed"]').wait_for(timeout=60_000)
        reason = row.locator(".upload__reason").inner_text()
        assert re.search(r"damaged|not a recognisable video|could not be read", reason), reason
        assert row.get_by_role("button", name=re.compile("Retry|Try again")).count() == 0

        video_row = page.locator("li.video-row", has_text=f"Damaged {token}")
        video_row.locator('xpath=self::*[@data-status="failed"]').wait_for()
        assert video_row.locator(".form-error").inner_text() == reason
        assert video_row.get_by_role("button", name="Retry").count() == 0
        page.screenshot(path=screenshots / "upload-row-failed.png", full_page=True)
        # The same after a reload (the job's retryable flag, not the page's memory).
        page.reload()
        video_row.locator('xpath=self::*[@data-status="failed"]').wait_for()
        assert video_row.get_by_role("button", name="Retry").count() == 0

        # Its watch page and its stream say it failed (not "not ready yet"), and promise
        # no retry.
        video_id = video_row.get_attribute("data-video-id")
        stream = user.http.get(f"/api/gallery/stream/{video_id}")
        assert stream.status_code == 409
        assert stream.json()["error"]["code"] == "video_failed"
        page.goto(f"{base}/watch/{video_id}")
        message = page.locator(".player__message").inner_text()
        assert "failed" in message
        assert "retry" not in message.lower()
        assert errors == []
    finally:
        user.close()
        context.close()


def test_a_forbidden_import_link_is_an_error_in_the_form_and_pages_past_the_end(
    platform: Any, browser: Any
) -> None:
    base = platform.url
    user = ApiUser(base, f"feedback-import-{uuid.uuid4().hex[:8]}@example.com")
    context, page, errors = _open(browser)
    try:
        log_in(page, base, user.email, then="/my")
        page.locator(".results-status", has_text="You have no videos yet").wait_for()
        page.get_by_label("Video URL").fill("http://169.254.169.254/latest/meta-data")
        with page.expect_response(re.compile(r"/api/jobs$")) as answer:
            page.get_by_role("button", name="Import").click()
        assert answer.value.status == 422
        error = page.locator(".import-form .form-error")
        error.wait_for()
        assert "private or reserved network address" in error.inner_text()
        # No video was made for it (and none named after the host).
        assert page.locator("li.video-row").count() == 0
        videos = user.http.get("/api/gallery/videos", params={"owner": "me"}).json()["items"]
        assert videos == []

        # A page of "My videos" past the end says so instead of "Page 9 of 1".
        page.goto(f"{base}/my?page=9")
        page.locator(".results-status", has_text="There is no page 9.").wait_for()
        assert page.get_by_role("link", name="Go to page 1").get_attribute("href") == "/my?page=1"
        assert "Page 9 of" not in page.locator("main").inner_text()
        assert errors == []
    finally:
        user.close()
        context.close()


# ------------------------------------------------------------------ rough edges
def test_description_links_are_clickable_and_safe(
    platform: Any, browser: Any, ready_video: tuple[ApiUser, dict[str, Any]]
) -> None:
    _, video = ready_video
    context, page, errors = _open(browser)
    try:
        page.goto(f"{platform.url}/watch/{video['id']}")
        description = page.locator(".watch__description")
        description.wait_for()
        links = description.locator("a")
        assert links.count() == 2
        first = links.nth(0)
        assert first.get_attribute("href") == "https://maps.example.com/harbour?from=pier&to=light"
        assert first.inner_text() == "https://maps.example.com/harbour?from=pier&to=light"
        assert links.nth(1).get_attribute("href") == "https://example.org/more"
        for n in range(2):
            assert links.nth(n).get_attribute("rel") == "nofollow ugc noopener"
        # Everything else stays text: no markup, no javascript: link.
        assert description.locator("b").count() == 0
        assert description.inner_text() == DESCRIPTION
        assert errors == []
    finally:
        context.close()


def test_gallery_pages_past_the_end_empty_state_and_wide_screens(
    platform: Any, browser: Any, ready_video: tuple[ApiUser, dict[str, Any]], screenshots: Path
) -> None:
    base = platform.url
    context, page, errors = _open(browser, viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{base}/?page=99")
        status = page.locator(".results-status", has_text="There is no page 99")
        status.wait_for()
        page.wait_for_function("!location.search.includes('page=99')")
        assert "Page 99" not in page.locator("main").inner_text()
        assert page.locator(".grid > li").count() >= 1

        # Wide screens use the width: six columns or more at 1920 px.
        columns = page.evaluate(
            "getComputedStyle(document.querySelector('.grid'))"
            ".gridTemplateColumns.split(' ').length"
        )
        assert columns >= 6, columns
        page.screenshot(path=screenshots / "gallery-1920.png")

        # An empty site invites the first upload (the listing answered empty).
        page.route(
            re.compile(r"/api/gallery/videos\?"),
            lambda route: route.fulfill(
                status=200,
                content_type="application/json",
                body=json.dumps(
                    {"items": [], "total": 0, "total_exact": True, "page": 1, "per_page": 24}
                ),
            ),
        )
        page.goto(f"{base}/")
        cta = page.get_by_role("link", name="Upload a video")
        cta.wait_for()
        assert cta.get_attribute("href") == "/my#upload"
        cta.click()
        page.wait_for_url(re.compile(r"/login\?next="))  # not signed in: log in first
        assert errors == []
    finally:
        context.close()


def test_portrait_renditions_are_labelled_by_their_short_side(platform: Any, browser: Any) -> None:
    context, page, errors = _open(browser)
    try:
        page.goto(f"{platform.url}/login")
        labels = page.evaluate(
            """async () => {
              const { labelOf } = await import("/player.js");
              return [
                labelOf({ quality: "mobile", width: 360, height: 640 }),
                labelOf({ quality: "mobile", width: 640, height: 360 }),
                labelOf({ quality: "source", width: 480, height: 854 }),
                labelOf({ quality: "720p", width: 720, height: 1280 }),
              ];
            }"""
        )
        assert labels == ["Mobile (360p)", "Mobile (360p)", "Source (480p)", "720p"]
        assert errors == []
    finally:
        context.close()


# ------------------------------------------------------------------ accessibility
def test_axe_finds_no_serious_problem_on_any_page(
    platform: Any, browser: Any, ready_video: tuple[ApiUser, dict[str, Any]]
) -> None:
    assert AXE.exists(), "npm install (axe-core is in package.json)"
    base = platform.url
    owner, video = ready_video
    admin = ApiUser(base, f"feedback-admin-{uuid.uuid4().hex[:8]}@example.com")
    grant_admin(platform, admin.email)
    findings: list[str] = []
    # The site's CSP allows no inline script: let the test inject axe-core anyway.
    context, page, errors = _open(browser, bypass_csp=True)
    try:
        page.goto(f"{base}/")
        page.locator(".grid > li").first.wait_for()
        findings += axe(page, "gallery")
        page.goto(f"{base}/login")
        page.get_by_label("Email").wait_for()
        findings += axe(page, "login")
        page.goto(f"{base}/signup")
        page.get_by_label("Email").wait_for()
        findings += axe(page, "sign-up")
        page.goto(f"{base}/watch/{video['id']}")
        page.locator(".watch__description").wait_for()
        findings += axe(page, "watch")

        log_in(page, base, owner.email, then="/my")
        page.locator("li.video-row").first.wait_for()
        findings += axe(page, "my videos")
        page.goto(f"{base}/account")
        page.locator("main h1").wait_for()
        page.wait_for_load_state("networkidle")
        findings += axe(page, "account")
        context.close()

        context, page, more_errors = _open(browser, bypass_csp=True)
        errors += more_errors
        log_in(page, base, admin.email, then="/moderation")
        page.locator("main h1").wait_for()
        page.wait_for_load_state("networkidle")
        findings += axe(page, "moderation")
        assert findings == []
        assert errors == []
    finally:
        admin.close()
        context.close()


def test_accent_colours_keep_their_contrast(
    platform: Any, browser: Any, ready_video: tuple[ApiUser, dict[str, Any]]
) -> None:
    """White on the primary red passes WCAG AA (4.5:1), and the red as hover text on the
    dark theme's page is lightened instead of falling to 3.7:1."""
    luminance = """(rgb) => {
      const [r, g, b] = rgb.match(/\\d+/g).slice(0, 3).map((v) => {
        const c = Number(v) / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    }"""
    ratio = f"""([fg, bg]) => {{
      const lum = {luminance};
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      return (a + 0.05) / (b + 0.05);
    }}"""
    for scheme in ("light", "dark"):
        context, page, errors = _open(browser, color_scheme=scheme)
        try:
            page.goto(f"{platform.url}/")
            button = page.locator("button.button--primary", has_text="Search")
            colours = button.evaluate(
                "(el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
            )
            assert page.evaluate(ratio, colours) >= 4.5, (scheme, colours)
            card = page.locator(".grid > li .card__link").first
            card.hover()
            title = card.locator(".card__title").evaluate("(el) => getComputedStyle(el).color")
            background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            assert page.evaluate(ratio, [title, background]) >= 4.5, (scheme, title, background)
            assert errors == []
        finally:
            context.close()
