"""The web client in a real Chromium against the real platform (``videoforge serve``).

The main scenario follows one video through the site: sign up, upload a generated clip
through the page's file input, watch the live status reach "ready", play it with
shaka-player (DASH, HLS when DASH fails, one MP4 when both fail), find it by search, make
it private and check that another user can no longer find or open it. Screenshots of the
main pages (desktop and phone) are saved to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser import pages
from tests.browser.pages import DESKTOP

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
READY_TIMEOUT_MS = 90_000


class Tab:
    """A page plus what it did: requests made and JavaScript errors raised."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append((r.method, r.url)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        # The gateway's CSP forbids inline scripts and foreign code: a violation means the
        # client relies on something the policy blocks.
        page.on(
            "console",
            lambda m: self.errors.append(m.text) if "Content Security Policy" in m.text else None,
        )

    def urls(self, pattern: str, method: str = "GET") -> list[str]:
        return [u for m, u in self.requests if m == method and re.search(pattern, u)]


@pytest.fixture
def new_tab(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(*, viewport: dict[str, int] = DESKTOP, init_script: str | None = None) -> Tab:
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(15_000)
        if init_script:
            context.add_init_script(init_script)
        contexts.append(context)
        return Tab(context.new_page())

    yield make
    for context in contexts:
        context.close()


def sign_up(tab: Tab, base: str, email: str) -> None:
    pages.sign_up(tab.page, base, email)
    tab.page.get_by_role("heading", name="My videos").wait_for()


def row_for(page: Any, video_id: str) -> Any:
    return page.locator(f'li.video-row[data-video-id="{video_id}"]')


def start_playback(tab: Tab) -> None:
    """Click the player (a user gesture, as a viewer would: its middle is the big play
    button) and wait for time to advance."""
    page = tab.page
    page.wait_for_function("() => document.querySelector('video')?.readyState >= 1")
    page.locator(".player").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.currentTime > 0.5; }",
        timeout=20_000,
    )


def test_upload_watch_search_and_privacy(
    platform: Any,
    new_tab: Any,
    clip_factory: Any,
    clips_dir: Path,
    screenshots: Path,
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:10]
    title = f"Harbour sunset {token}"
    clip = clip_factory(clips_dir / f"{title}.mp4")

    # -- the owner signs up (the log-in and sign-up pages are screenshotted on the way)
    owner = new_tab()
    owner.page.goto(f"{base}/login")
    owner.page.get_by_role("heading", name="Log in to VideoForge").wait_for()
    owner.page.screenshot(path=screenshots / "login.png")
    sign_up(owner, base, f"owner-{token}@example.com")
    page = owner.page
    assert page.locator("#account-name").inner_text() == f"owner-{token}@example.com"

    # Record every status each video row shows, to prove the status changed live.
    page.evaluate(
        """() => {
          window.__statuses = [];
          new MutationObserver(() => {
            for (const row of document.querySelectorAll('li.video-row')) {
              const s = row.dataset.status;
              if (window.__statuses.at(-1) !== s) window.__statuses.push(s);
            }
          }).observe(document.querySelector('main'),
                     {subtree: true, childList: true, attributes: true});
        }"""
    )

    # -- upload through the page's file input
    page.locator(".dropzone input[type=file]").set_input_files(str(clip))
    upload = page.locator("li.upload").first
    upload.locator(".upload__name", has_text=clip.name).wait_for()
    page.wait_for_selector('li.upload[data-state="done"]', timeout=30_000)
    assert upload.locator("progress").get_attribute("value") == "100"
    assert owner.urls(r"/storage/", "POST"), "the bytes went straight to the object store"
    assert owner.urls(r"/api/upload/confirm$", "POST")
    assert owner.urls(r"/api/jobs$", "POST"), "processing started by itself"

    row = page.locator("li.video-row", has_text=title)
    row.wait_for()
    video_id = row.get_attribute("data-video-id")
    assert video_id
    page.wait_for_selector(
        f'li.video-row[data-video-id="{video_id}"][data-status="ready"]', timeout=READY_TIMEOUT_MS
    )
    statuses = page.evaluate("window.__statuses")
    assert statuses[0] == "processing", statuses
    assert statuses[-1] == "ready", statuses
    assert owner.urls(r"/api/jobs/[^/]+/events\?access_token="), "live progress over SSE"
    assert row_for(page, video_id).locator(".badge--status").inner_text() == "Ready"
    assert row_for(page, video_id).locator(".badge--public").inner_text() == "Public"
    page.screenshot(path=screenshots / "my-videos.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=screenshots / "phone-my-videos.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size(DESKTOP)

    # -- watch it: shaka-player plays the DASH manifest
    row_for(page, video_id).get_by_role("link", name="Watch").click()
    page.wait_for_url(f"{base}/watch/{video_id}")
    page.get_by_role("heading", name=title).wait_for()
    video = page.locator("video")
    page.wait_for_selector("video[data-engine]")
    assert video.get_attribute("data-engine") == "dash"
    assert re.search(r"/manifest\.mpd", video.get_attribute("data-source") or "")
    views_url = f"/api/gallery/videos/{video_id}/views"
    with page.expect_response(lambda r: r.url.endswith(views_url)) as view:
        start_playback(owner)
    assert view.value.status == 202
    assert owner.urls(r"manifest\.mpd"), "the DASH manifest was loaded"
    assert owner.urls(r"\.(m4s|ts)(\?|$)"), "media segments were loaded"
    assert len(owner.urls(r"/views$", "POST")) == 1, "one view per playback"
    assert page.locator(".watch__meta .views").inner_text() == "1 view"
    # The player's quality menu offers Auto and each rung.
    page.locator(".player").hover()
    page.get_by_role("button", name="More settings").click()
    page.locator(".shaka-overflow-menu .shaka-resolution-button").click()
    rungs = page.locator(".shaka-resolutions button").all_inner_texts()
    assert any(r.startswith("Auto") for r in rungs), rungs
    assert len(rungs) >= 2, rungs
    page.keyboard.press("Escape")
    assert page.get_by_label("Share").input_value() == f"{base}/watch/{video_id}"
    page.get_by_role("heading", name="Views in the last 30 days").wait_for()
    assert page.locator(".chart__bar").count() == 30
    page.evaluate("document.querySelector('video').pause()")
    page.screenshot(path=screenshots / "watch.png", full_page=True)

    # -- the gallery: search finds it; the GIF preview shows on hover
    page.get_by_role("link", name="Browse").click()
    page.get_by_role("heading", name="Browse videos").wait_for()
    page.locator("li.card", has_text=title).wait_for()
    page.screenshot(path=screenshots / "gallery.png", full_page=True)
    page.get_by_role("searchbox", name="Search videos").fill(token)
    page.get_by_role("searchbox", name="Search videos").press("Enter")
    card = page.locator("li.card", has_text=title)
    card.wait_for()
    assert page.url.endswith(f"/?q={token}")
    img = card.locator("img")
    assert "thumbnail" in (img.get_attribute("src") or "")
    card.locator("a.card__link").hover()
    page.wait_for_function(
        "(el) => el.src.includes('preview')", arg=img.element_handle(), timeout=5_000
    )
    assert card.locator(".badge--duration").inner_text() == "0:02"
    page.mouse.move(0, 0)
    page.wait_for_function("(el) => el.src.includes('thumbnail')", arg=img.element_handle())
    card.locator("a.card__link").focus()  # keyboard users get the preview too
    page.wait_for_function("(el) => el.src.includes('preview')", arg=img.element_handle())
    page.locator("body").focus()
    with page.expect_request(re.compile(r"/api/gallery/videos\?.*sort=title")):
        page.get_by_label("Sort by").select_option("title")
    assert page.url.endswith(f"/?q={token}&sort=title")
    card.wait_for()
    page.screenshot(path=screenshots / "gallery-search.png", full_page=True)
    page.get_by_role("searchbox", name="Search videos").fill(f"nomatch{token}")
    page.get_by_role("button", name="Search").click()
    page.get_by_text(f"No videos match “nomatch{token}”.").wait_for()

    # -- another user plays it over HLS: the player falls back when DASH fails
    other = new_tab()
    sign_up(other, base, f"other-{token}@example.com")
    other.page.route(re.compile(r"manifest\.mpd"), lambda route: route.abort("failed"))
    other.page.goto(f"{base}/watch/{video_id}")
    other.page.get_by_role("heading", name=title).wait_for()
    other.page.wait_for_selector('video[data-engine="hls"]')
    start_playback(other)
    assert other.urls(r"/vendor/shaka-player\.ui\.js$")
    assert other.urls(r"master\.m3u8")
    assert other.urls(r"\.(m4s|ts)(\?|$)")
    # Media Source Extensions, not a plain URL.
    assert other.page.evaluate("document.querySelector('video').currentSrc").startswith("blob:")
    assert other.page.get_by_role("button", name="Edit").count() == 0, "only the owner edits"
    assert other.page.locator(".analytics").count() == 0, "statistics are the owner's"

    # -- when DASH and HLS fail, the player falls back to an MP4 rendition
    fallback = new_tab()
    fallback.page.route(
        re.compile(r"manifest\.mpd|master\.m3u8"), lambda route: route.abort("failed")
    )
    fallback.page.goto(f"{base}/watch/{video_id}")
    fallback.page.wait_for_selector('video[data-engine="mp4"]')
    assert "fixed quality" in fallback.page.locator(".watch .notice").inner_text()
    assert re.search(r"\.mp4(\?|$)", fallback.page.locator("video").get_attribute("data-source"))
    start_playback(fallback)
    assert fallback.errors == []

    # -- phone-sized screens
    phone = new_tab(viewport=PHONE)
    phone.page.goto(f"{base}/")
    phone.page.locator("li.card", has_text=title).wait_for()
    phone.page.screenshot(path=screenshots / "phone-gallery.png", full_page=True)
    phone.page.goto(f"{base}/watch/{video_id}")
    phone.page.wait_for_selector("video[data-engine]")
    phone.page.screenshot(path=screenshots / "phone-watch.png", full_page=True)
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "no horizontal scrolling on a phone"

    # -- the owner makes it private
    page.goto(f"{base}/my")
    row_for(page, video_id).get_by_role("button", name="Edit").click()
    dialog = page.locator("dialog")
    dialog.get_by_label("Visibility").select_option("private")
    dialog.get_by_label("Description").fill("Boats at dusk.\nFilmed from the pier.")
    page.screenshot(path=screenshots / "edit-dialog.png")
    dialog.get_by_role("button", name="Save").click()
    row_for(page, video_id).locator(".badge--private").wait_for()
    assert dialog.count() == 0

    # -- ... and the other user can neither find nor open it
    other.page.goto(f"{base}/?q={token}")
    other.page.get_by_text(f"No videos match “{token}”.").wait_for()
    assert other.page.locator("li.card").count() == 0
    other.page.goto(f"{base}/watch/{video_id}")
    other.page.get_by_role("heading", name="Video not found").wait_for()
    assert other.page.locator("video").count() == 0
    other.page.screenshot(path=screenshots / "not-found.png")

    # The owner still can.
    page.goto(f"{base}/watch/{video_id}")
    page.get_by_role("heading", name=title).wait_for()
    assert page.locator(".watch__meta .badge--private").inner_text() == "Private"
    description = page.locator(".watch__description").inner_text()
    assert description == "Boats at dusk.\nFilmed from the pier."

    assert owner.errors == []
    assert other.errors == []
    assert phone.errors == []
