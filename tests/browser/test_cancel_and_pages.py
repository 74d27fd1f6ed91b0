"""Cancel and retry, gallery pagination and a keyboard-only path, in a real Chromium.

The videos these tests browse are made through the real HTTP API (sign up, presigned
upload, confirm, start a job) with httpx, then processed by the platform's worker; the
browser does what a person would: clicks Cancel and Retry, pages through the gallery and
opens a video with the keyboard alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from tests.browser.api_user import PASSWORD, ApiUser
from tests.browser.pages import DESKTOP

pytestmark = pytest.mark.browser

#: Pages of two: the client asks for 24 per page, the test rewrites that request.
PAGE_SIZE = 2
GALLERY_VIDEOS = 3
#: The data-action of the focused element when it is in a video row (else null).
FOCUSED_ACTION = (
    "document.activeElement.closest('li.video-row')"
    " ? document.activeElement.dataset.action || 'in-row' : null"
)


def with_page_size(url: str, per_page: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "per_page"]
    query.append(("per_page", str(per_page)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def open_page(context: Any) -> tuple[Any, list[str]]:
    """A new page of ``context`` and the JavaScript errors it raises (asserted empty)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def tab_to(page: Any, predicate: str, *, limit: int = 40) -> None:
    """Press Tab until ``predicate`` (a JS function of the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({predicate})(document.activeElement)"):
            return
    focused = page.evaluate("document.activeElement?.outerHTML?.slice(0, 200)")
    raise AssertionError(f"{predicate} not reached with Tab; focus is on {focused}")


#: Jobs followed by polling (no EventSource: as when more than three jobs are followed),
#: and a poll answering "CANCELLED" reaches the page 3 s late (a slow network), once
#: ``window.__slowCancelled`` is set.
SLOW_CANCELLED_POLLS = """
(() => {
  delete window.EventSource;
  const realFetch = window.fetch.bind(window);
  window.__held = 0;
  window.__released = 0;
  window.fetch = async (input, init) => {
    const res = await realFetch(input, init);
    const url = new URL(typeof input === "string" ? input : input.url, location.href);
    const method = (init && init.method) || "GET";
    const jobRead = method === "GET" && /^\\/api\\/jobs\\/[^/]+$/.test(url.pathname);
    if (window.__slowCancelled && jobRead) {
      const body = await res.clone().json().catch(() => null);
      if (body && body.status === "CANCELLED") {
        window.__held += 1;
        await new Promise((resolve) => setTimeout(resolve, 3000));
        window.__released += 1;
      }
    }
    return res;
  };
})();
"""


# ----------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def long_clip(clip_factory: Callable[..., Path], clips_dir: Path) -> Path:
    """40 s at 640x360: its ladder run lasts long enough to be caught and held."""
    return clip_factory(clips_dir / "Long drive.mp4", seconds=40, size="640x360")


@pytest.fixture(scope="module")
def busy_clip(clip_factory: Callable[..., Path], clips_dir: Path) -> Path:
    """40 s at 640x360: held mid-transcode, it keeps the platform's one worker busy."""
    return clip_factory(clips_dir / "Busy.mp4", seconds=40, size="640x360")


@pytest.fixture(scope="module")
def gallery_videos(
    platform: Any, clip_factory: Callable[..., Path], clips_dir: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """Three public, ready videos whose titles share a token: (token, {id: title})."""
    token = uuid.uuid4().hex[:10]
    user = ApiUser(platform.url, f"pages-{token}@example.com")
    clip = clip_factory(clips_dir / f"page-clip-{token}.mp4", seconds=1)
    try:
        jobs = {}
        for n in range(1, GALLERY_VIDEOS + 1):
            title = f"Tide pool {n} {token}"
            jobs[title] = user.upload(clip, title=title)
        videos = {}
        for title, job in jobs.items():
            user.wait_video(job["video_id"], "ready")
            videos[job["video_id"]] = title
        yield token, videos
    finally:
        user.close()


# ----------------------------------------------------------------------- tests
def test_cancel_then_retry(platform: Any, context: Any, long_clip: Path, screenshots: Path) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:10]
    title = "Long drive"
    user = ApiUser(base, f"cancel-{token}@example.com")
    page, errors = open_page(context)
    try:
        page.goto(f"{base}/login")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/my")

        page.locator(".dropzone input[type=file]").set_input_files(str(long_clip))
        row = page.locator("li.video-row", has_text=title)
        row.wait_for(timeout=30_000)
        video_id = row.get_attribute("data-video-id")
        assert video_id
        job_id = user.job_of(video_id)["id"]
        # Cancel while the worker is transcoding it (not merely queued). The ladder run
        # is held, so a fast machine cannot finish it before the click lands.
        platform.hold_transcode()
        user.wait_job(job_id, {"PROCESSING"})
        row.locator(".badge--status", has_text=re.compile(r"^Processing$")).wait_for()
        with page.expect_response(re.compile(r"/api/jobs/[^/]+/cancel$")) as cancelled:
            row.get_by_role("button", name="Cancel").click()
        assert cancelled.value.status == 200
        assert cancelled.value.json()["cancel_requested"] is True

        page.wait_for_selector(
            f'li.video-row[data-video-id="{video_id}"][data-status="cancelled"]', timeout=30_000
        )
        assert row.locator(".badge--status").inner_text() == "Cancelled"
        assert row.get_by_role("button", name="Cancel").count() == 0
        assert row.get_by_role("button", name="Retry").is_visible()
        assert row.locator("progress").count() == 0
        job = user.job(job_id)
        assert job["status"] == "CANCELLED", job
        page.evaluate("window.scrollTo(0, 0)")  # sticky header: shoot from the top
        page.screenshot(path=screenshots / "my-videos-cancelled.png", full_page=True)

        # The cancelled state is the server's, not just the page's: it survives a reload.
        page.reload()
        row.wait_for()
        assert row.get_attribute("data-status") == "cancelled"
        assert row.locator(".badge--status").inner_text() == "Cancelled"
        # Gallery events are applied asynchronously: the video is "uploaded" again soon.
        user.wait_video(video_id, "uploaded", timeout=30)

        # Retry (by keyboard) runs the same job again; the row follows it live.
        row.get_by_role("button", name="Retry").focus()
        with page.expect_response(re.compile(r"/api/jobs/[^/]+/retry$")) as retried:
            page.keyboard.press("Enter")
        assert retried.value.status == 200
        assert retried.value.json()["id"] == job_id
        platform.hold_transcode()
        page.wait_for_selector(
            f'li.video-row[data-video-id="{video_id}"][data-status="processing"]'
        )
        assert user.job(job_id)["status"] in {"PENDING", "DOWNLOADING", "PROCESSING"}
        user.wait_job(job_id, {"PROCESSING"})
        row.locator(".badge--status", has_text=re.compile(r"^Processing$")).wait_for()
        row.locator("progress").wait_for()
        assert row.get_by_role("button", name="Retry").count() == 0
        # The pressed button was replaced: focus moved to its counterpart, not the page.
        assert page.evaluate(FOCUSED_ACTION) == "cancel"
        page.evaluate("window.scrollTo(0, 0)")  # sticky header: shoot from the top
        page.screenshot(path=screenshots / "my-videos-retried.png", full_page=True)

        # Cancel the retried run too, by keyboard (and keeps the one worker free).
        page.keyboard.press("Enter")
        page.wait_for_selector(
            f'li.video-row[data-video-id="{video_id}"][data-status="cancelled"]', timeout=30_000
        )
        assert user.job(job_id)["status"] == "CANCELLED"
        assert page.evaluate(FOCUSED_ACTION), "focus stayed in the row"
        assert errors == []
    finally:
        platform.release_held()
        user.close()


def test_cancel_while_queued_then_retry_survives_a_late_update(
    platform: Any,
    browser: Any,
    busy_clip: Path,
    clip_factory: Any,
    clips_dir: Path,
    screenshots: Path,
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:10]
    # Someone else's long video keeps the one worker busy, so ours waits in the queue.
    busy = ApiUser(base, f"busy-{token}@example.com")
    user = ApiUser(base, f"queued-{token}@example.com")
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    context.add_init_script(SLOW_CANCELLED_POLLS)
    page, errors = open_page(context)
    busy_job: dict[str, Any] = {}
    try:
        busy_job = busy.upload(busy_clip, title=f"Busy {token}")
        platform.hold_transcode()  # busy for as long as this test needs
        busy.wait_job(busy_job["id"], {"PROCESSING"})
        title = f"Quick cut {token}"
        job = user.upload(clip_factory(clips_dir / f"{title}.mp4", seconds=1), title=title)
        assert user.job(job["id"])["status"] == "PENDING"

        page.goto(f"{base}/login")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/my")
        row = page.locator(f'li.video-row[data-video-id="{job["video_id"]}"]')
        row.locator(".badge--status", has_text="Queued").wait_for()
        assert row.locator("progress").count() == 0, "a queued job has no progress yet"

        # A queued job is cancelled at once.
        page.evaluate("window.__slowCancelled = true")
        with page.expect_response(re.compile(r"/api/jobs/[^/]+/cancel$")) as cancelled:
            row.get_by_role("button", name="Cancel").click()
        assert cancelled.value.json()["status"] == "CANCELLED"
        assert user.job(job["id"])["status"] == "CANCELLED"
        row.locator(".badge--status", has_text="Cancelled").wait_for()
        assert row.get_attribute("data-status") == "cancelled"

        # The page's next poll of the job answers "CANCELLED" but arrives late; the user
        # has pressed Retry meanwhile. That stale answer must not undo the retry.
        page.wait_for_function("() => window.__held > 0", timeout=10_000)
        with page.expect_response(re.compile(r"/api/jobs/[^/]+/retry$")) as retried:
            row.get_by_role("button", name="Retry").click()
        assert retried.value.json()["status"] == "PENDING"
        row.locator(".badge--status", has_text="Queued").wait_for()
        page.wait_for_function("() => window.__released > 0", timeout=10_000)
        page.wait_for_timeout(300)  # let the page apply it
        assert row.get_attribute("data-status") == "processing", row.inner_text()
        assert row.get_by_role("button", name="Cancel").count() == 1, row.inner_text()
        assert row.get_by_role("button", name="Retry").count() == 0

        # Free the worker: the retried job runs, and the row follows it to "ready".
        busy.http.post(f"/api/jobs/{busy_job['id']}/cancel").raise_for_status()
        page.wait_for_selector(
            f'li.video-row[data-video-id="{job["video_id"]}"][data-status="ready"]',
            timeout=60_000,
        )
        assert user.job(job["id"])["status"] == "COMPLETED"
        row.get_by_role("link", name="Watch").wait_for()
        page.evaluate("window.scrollTo(0, 0)")  # sticky header: shoot from the top
        page.screenshot(path=screenshots / "my-videos-retried-ready.png", full_page=True)
        assert errors == []
    finally:
        context.close()
        if busy_job:  # never leave the one worker busy for the tests after this one
            busy.http.post(f"/api/jobs/{busy_job['id']}/cancel")
        platform.release_held()
        busy.close()
        user.close()


def test_gallery_pagination_by_keyboard(
    platform: Any, context: Any, gallery_videos: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    base = platform.url
    token, videos = gallery_videos
    page, errors = open_page(context)
    listings: list[str] = []

    def small_pages(route: Any) -> None:
        listings.append(route.request.url)
        route.continue_(url=with_page_size(route.request.url, PAGE_SIZE))

    page.route(re.compile(r"/api/gallery/videos\?"), small_pages)

    page.goto(f"{base}/?q={token}")
    page.get_by_role("heading", name=f"Results for “{token}”").wait_for()
    cards = page.locator("li.card")
    cards.first.wait_for()
    pager = page.get_by_role("navigation", name="Pagination")
    label = pager.locator(".pager__label")
    assert label.inner_text() == "Page 1 of 2"
    assert label.get_attribute("aria-current") == "page"
    assert page.locator(".results-status").inner_text() == f"{GALLERY_VIDEOS} videos for “{token}”"
    first_ids = cards.evaluate_all("cards => cards.map(c => c.dataset.videoId)")
    assert len(first_ids) == PAGE_SIZE
    assert set(first_ids) <= set(videos)
    # No previous page: "Previous" is shown disabled and is not a link.
    assert pager.get_by_role("link", name="← Previous").count() == 0
    assert pager.get_by_text("← Previous").get_attribute("aria-disabled") == "true"
    page.screenshot(path=screenshots / "gallery-page-1.png", full_page=True)

    # Keyboard only: Tab to "Next", Enter.
    page.locator("body").focus()
    tab_to(page, "el => el.matches('nav.pager a[rel=next]')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/?q={token}&page=2")
    page.wait_for_function(
        "() => document.querySelector('.pager__label')?.textContent === 'Page 2 of 2'"
    )
    second_ids = cards.evaluate_all("cards => cards.map(c => c.dataset.videoId)")
    assert len(second_ids) == GALLERY_VIDEOS - PAGE_SIZE
    assert not set(second_ids) & set(first_ids), "page 2 shows other videos"
    assert set(first_ids) | set(second_ids) == set(videos)
    assert pager.get_by_role("link", name="Next →").count() == 0
    assert pager.get_by_text("Next →").get_attribute("aria-disabled") == "true"
    # Focus moved to the results heading, so the next Tab starts from the new page.
    assert page.evaluate("document.activeElement.tagName") == "H1"
    assert "page=2" in listings[-1]
    page.screenshot(path=screenshots / "gallery-page-2.png", full_page=True)

    # ... and back with "Previous", again by keyboard.
    tab_to(page, "el => el.matches('nav.pager a[rel=prev]')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/?q={token}")
    page.wait_for_function(
        "() => document.querySelector('.pager__label')?.textContent === 'Page 1 of 2'"
    )
    assert cards.evaluate_all("cards => cards.map(c => c.dataset.videoId)") == first_ids

    # The browser's Back button returns to page 2 (the page is in the URL).
    page.go_back()
    page.wait_for_url(f"{base}/?q={token}&page=2")
    page.wait_for_function(
        "() => document.querySelector('.pager__label')?.textContent === 'Page 2 of 2'"
    )
    assert cards.evaluate_all("cards => cards.map(c => c.dataset.videoId)") == second_ids
    assert errors == []


def test_keyboard_only_gallery_to_watch_and_quality(
    platform: Any, context: Any, gallery_videos: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    base = platform.url
    token, videos = gallery_videos
    page, errors = open_page(context)
    page.goto(f"{base}/")
    page.get_by_role("heading", name="Browse videos").wait_for()

    # Search with the keyboard.
    tab_to(page, "el => el.type === 'search'")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/?q={token}")
    # The URL changes at once; the grid only when the results are in.
    page.get_by_text(f"{GALLERY_VIDEOS} videos for “{token}”").wait_for()
    assert page.locator(".grid").get_attribute("aria-busy") is None
    assert page.locator("li.card").count() == GALLERY_VIDEOS

    # Tab to the first video card and open it with Enter.
    tab_to(page, "el => el.matches('li.card a.card__link')")
    video_id = page.evaluate("document.activeElement.closest('li.card').dataset.videoId")
    assert video_id in videos
    # The focused card is visibly marked (a keyboard user must see where they are).
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.screenshot(path=screenshots / "gallery-keyboard-focus.png")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/watch/{video_id}")
    page.get_by_role("heading", name=videos[video_id]).wait_for()
    page.wait_for_selector("video[data-engine]")
    page.wait_for_function("() => window.vfPlayer?.getVariantTracks().length >= 1")

    # The player's settings menu is in the tab order; Enter opens it and its quality
    # menu, and a rung is chosen with the keyboard alone.
    tab_to(page, "el => el.getAttribute('aria-label') === 'More settings'")
    page.keyboard.press("Enter")
    resolution = page.locator(".shaka-overflow-menu .shaka-resolution-button")
    resolution.wait_for()
    tab_to(page, "el => el.classList.contains('shaka-resolution-button')", limit=10)
    page.keyboard.press("Enter")
    rungs = page.locator(".shaka-resolutions button:not(.shaka-back-to-overflow-button)")
    rungs.first.wait_for()
    label = rungs.first.inner_text().strip()
    rung = re.match(r"(\d+)p", label)
    assert rung, label
    height = int(rung.group(1))
    tab_to(page, "el => el.closest('.shaka-resolutions') && /^\\d+p/.test(el.innerText)")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => window.vfPlayer.getVariantTracks().some(t => t.active && t.height === {height})"
        " && !window.vfPlayer.getConfiguration().abr.enabled"
    )
    page.screenshot(path=screenshots / "watch-keyboard-quality.png")
    assert errors == []


def test_uploader_name_leads_to_their_videos(
    platform: Any, context: Any, gallery_videos: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    base = platform.url
    token, videos = gallery_videos
    page, errors = open_page(context)
    video_id = next(iter(videos))
    page.goto(f"{base}/watch/{video_id}")
    page.get_by_role("heading", name=videos[video_id]).wait_for()

    uploader = page.locator(".watch__owner a")
    name = uploader.inner_text()
    assert name.startswith("user-"), name  # a neutral name, never an e-mail address

    # Below the video: the uploader's other videos (never the one being watched).
    more = page.get_by_role("region", name=f"More from {name}")
    more.locator("li.card").first.wait_for()
    others = more.locator("li.card").evaluate_all("cs => cs.map(c => c.dataset.videoId)")
    assert set(others) == set(videos) - {video_id}
    assert more.get_by_role("heading", level=3).count() == len(others)
    page.screenshot(path=screenshots / "watch-more-from-uploader.png", full_page=True)

    uploader.click()
    page.get_by_role("heading", name=f"Videos by {name}").wait_for()
    assert "?owner=" in page.url
    cards = page.locator("li.card")
    page.get_by_text(f"{GALLERY_VIDEOS} videos").wait_for()
    assert set(cards.evaluate_all("cards => cards.map(c => c.dataset.videoId)")) == set(videos)
    assert set(page.locator(".card__owner a").all_inner_texts()) == {name}
    page.screenshot(path=screenshots / "uploader-videos.png", full_page=True)

    # The page is in the URL: a reload shows the same uploader's videos.
    page.reload()
    page.get_by_role("heading", name=f"Videos by {name}").wait_for()
    page.get_by_text(f"{GALLERY_VIDEOS} videos").wait_for()
    assert cards.count() == GALLERY_VIDEOS

    # A search there stays within the uploader's videos. (The token, not a title: a
    # title's number would also match a token that starts with the same digit.)
    page.get_by_role("searchbox", name="Search videos").fill(token)
    page.get_by_role("searchbox", name="Search videos").press("Enter")
    page.get_by_role("heading", name=f"Results for “{token}” by {name}").wait_for()
    page.get_by_text(f"{GALLERY_VIDEOS} videos for “{token}”").wait_for()
    assert set(cards.evaluate_all("cs => cs.map(c => c.dataset.videoId)")) == set(videos)
    assert "owner=" in page.url
    assert errors == []


def test_a_page_number_past_the_counted_videos_explains_itself(
    platform: Any, context: Any, gallery_videos: tuple[str, dict[str, str]]
) -> None:
    base = platform.url
    token, _ = gallery_videos
    page, errors = open_page(context)
    with page.expect_response(re.compile(r"/api/gallery/videos\?")) as listing:
        page.goto(f"{base}/?q={token}&page=100000")
    assert listing.value.status == 400
    assert listing.value.json()["error"]["code"] == "page_too_deep"
    page.get_by_text("That page is too far back.").wait_for()
    page.get_by_role("link", name="Go to the first page").click()
    page.wait_for_url(f"{base}/?q={token}")
    page.get_by_text(f"{GALLERY_VIDEOS} videos for “{token}”").wait_for()
    assert errors == []


def test_hls_quality_menu_switches_renditions(
    platform: Any,
    context: Any,
    clip_factory: Callable[..., Path],
    clips_dir: Path,
    screenshots: Path,
) -> None:
    """Over HLS (DASH refused), shaka plays the ladder and its quality menu picks a rung:
    the picture really changes size, and Auto hands back to shaka's ABR."""
    base = platform.url
    token = uuid.uuid4().hex[:10]
    user = ApiUser(base, f"ladder-{token}@example.com")
    try:
        clip = clip_factory(clips_dir / f"ladder-{token}.mp4", seconds=20, size="640x480")
        job = user.upload(clip, title=f"Ladder {token}")
        user.wait_video(job["video_id"], "ready")
    finally:
        user.close()

    page, errors = open_page(context)
    page.route(re.compile(r"manifest\.mpd"), lambda route: route.abort("failed"))
    page.goto(f"{base}/watch/{job['video_id']}")
    page.wait_for_selector('video[data-engine="hls"]')

    # A user gesture starts playback, once the media has metadata (a click before that
    # can be lost); the middle of the player is its big play button.
    page.wait_for_function("() => document.querySelector('video').readyState >= 1")
    page.locator(".player").click()
    page.wait_for_function(
        "() => document.querySelector('video').currentTime > 0.3", timeout=20_000
    )

    def quality_menu() -> Any:
        page.locator(".player").hover()
        menu = page.locator(".shaka-resolutions")
        if menu.is_visible():
            return menu
        overflow = page.locator(".shaka-overflow-menu")
        if not overflow.is_visible():  # after a choice shaka goes back to it, still open
            page.get_by_role("button", name="More settings").click()
        overflow.locator(".shaka-resolution-button").click()
        return menu

    rungs = quality_menu().locator("button:not(.shaka-back-to-overflow-button)")
    labels = [t.strip() for t in rungs.all_inner_texts()]
    # the 480p rung and the mobile rung, tallest first, then Auto
    assert [label.splitlines()[0] for label in labels] == ["480p", "360p", "Auto"], labels
    for label, height in (("360p", 360), ("480p", 480)):
        quality_menu().locator("button", has_text=label).first.click()
        page.wait_for_function(
            f"() => document.querySelector('video').videoHeight === {height}", timeout=15_000
        )
    page.screenshot(path=screenshots / "watch-hls-quality.png")
    quality_menu().locator("button", has_text="Auto").first.click()
    page.wait_for_function("() => window.vfPlayer.getConfiguration().abr.enabled")
    page.wait_for_function("() => !document.querySelector('video').paused")
    assert errors == []
