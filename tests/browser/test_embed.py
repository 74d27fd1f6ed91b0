"""Share and embed in a real Chromium: ``/embed/{id}`` inside an iframe of a page on
another origin (a second loopback server) plays muted on autoplay and starts at
``start=``; a private video's embed says so and loads no media; the watch page refuses
to be framed; the share box's link at the current time carries ``?t=`` and opening it
seeks there; a title full of markup is shown as text on both pages.
"""

from __future__ import annotations

import html
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import views_unavailable_once

pytestmark = pytest.mark.browser

HOSTILE = "<script>window.__xss = 1</script><img src=x onerror=alert(1)> \"Boats\" & 'gulls'"
SECONDS = 12


def upload(base: str, clip: Path, *, title: str, visibility: str) -> str:
    """Sign up, upload ``clip``, confirm it with ``title`` and ``visibility``, process it
    and wait until it is ready; returns its id."""
    user = ApiUser(base, f"embed-{uuid.uuid4().hex[:10]}@example.com")
    try:
        return user.upload_ready(clip, title=title, visibility=visibility)
    finally:
        user.close()


@pytest.fixture(scope="module")
def videos(platform: Any, clip_factory: Callable[..., Path], clips_dir: Path) -> dict[str, str]:
    clip = clip_factory(clips_dir / "embed.mp4", seconds=SECONDS)
    return {
        "public": upload(platform.url, clip, title=HOSTILE, visibility="public"),
        "private": upload(platform.url, clip, title="My diary", visibility="private"),
        "unlisted": upload(platform.url, clip, title="By link only", visibility="unlisted"),
    }


class _FramingPage(BaseHTTPRequestHandler):
    """``/frame?src=URL``: a page that frames ``src``, as a blog embedding a video."""

    def do_GET(self) -> None:
        src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
        body = (
            "<!doctype html><title>A blog</title><h1>My blog</h1>"
            f'<iframe id="player" src="{html.escape(src)}" width="640" height="360" '
            'frameborder="0" allow="autoplay; fullscreen; picture-in-picture" '
            "allowfullscreen></iframe>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def other_site() -> Iterator[str]:
    """Another origin (``localhost`` on its own port; the platform is on 127.0.0.1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FramingPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def open_page(context: Any) -> tuple[Any, list[str]]:
    """A new page and what went wrong on it: JavaScript errors, CSP violations, dialogs."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page, problems


def embed_frame(page: Any, other_site: str, src: str) -> Any:
    page.goto(f"{other_site}/frame?src={quote(src, safe='')}")
    handle = page.wait_for_selector("#player")
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_load_state()
    return frame


def test_embed_autoplays_muted_in_a_frame_on_another_site(
    platform: Any, context: Any, videos: dict[str, str], other_site: str, screenshots: Path
) -> None:
    page, problems = open_page(context)
    src = f"{platform.url}/embed/{videos['public']}?autoplay=1&muted=1"
    frame = embed_frame(page, other_site, src)
    assert urlsplit(frame.url).netloc != urlsplit(page.url).netloc, "a cross-origin frame"
    frame.wait_for_function("() => document.querySelector('video').currentTime > 1")
    assert frame.evaluate("() => document.querySelector('video').muted") is True
    assert frame.evaluate("() => document.querySelector('video').paused") is False
    # The title is shown as text, linked to the watch page.
    title = frame.locator(".embed__title")
    assert title.text_content() == HOSTILE
    assert title.get_attribute("href") == f"{platform.url}/watch/{videos['public']}"
    assert frame.evaluate("() => window.__xss") is None
    page.screenshot(path=screenshots / "embed-in-frame.png")
    assert problems == []


def test_embed_posts_a_refused_view_again_after_retry_after(
    platform: Any, context: Any, videos: dict[str, str], other_site: str
) -> None:
    page, problems = open_page(context)
    posts = views_unavailable_once(page, videos["unlisted"], retry_after=2)
    src = f"{platform.url}/embed/{videos['unlisted']}?autoplay=1&muted=1"
    with page.expect_response(
        lambda r: r.url.endswith(f"/videos/{videos['unlisted']}/views") and r.status == 202,
        timeout=20_000,
    ):
        embed_frame(page, other_site, src)
    assert len(posts) == 2  # the 503, then the same view again
    assert posts[1] - posts[0] >= 1.8  # not before the server's Retry-After
    time.sleep(1)
    assert len(posts) == 2
    assert problems == []


def test_embed_autoplay_without_muted_plays_muted_when_the_browser_insists(
    platform: Any, context: Any, videos: dict[str, str], other_site: str
) -> None:
    page, problems = open_page(context)
    frame = embed_frame(page, other_site, f"{platform.url}/embed/{videos['public']}?autoplay=1")
    frame.wait_for_function("() => document.querySelector('video').currentTime > 0.5")
    muted = frame.evaluate("() => document.querySelector('video').muted")
    # Chromium refuses sound to a page the viewer has not touched: it plays muted, and
    # the viewer is offered the sound.
    if muted:
        # The embed's own offer (the player's mute button is labelled "Unmute" too).
        frame.locator("button.embed__unmute").click()
        assert frame.evaluate("() => document.querySelector('video').muted") is False
    assert problems == []


def test_embed_start_and_no_controls(
    platform: Any, context: Any, videos: dict[str, str], other_site: str
) -> None:
    page, problems = open_page(context)
    src = (
        f"{platform.url}/embed/{videos['public']}"
        "?start=0m7s&autoplay=1&muted=1&controls=0&title=0&loop=1"
    )
    frame = embed_frame(page, other_site, src)
    frame.wait_for_function("() => !document.querySelector('video').paused")
    now = frame.evaluate("() => document.querySelector('video').currentTime")
    assert 7 <= now < 10, now
    assert frame.locator(".embed__title").count() == 0
    assert frame.locator(".shaka-controls-container").is_hidden()
    assert frame.evaluate("() => document.querySelector('video').loop") is True
    # Without controls a click still pauses, as on YouTube.
    frame.locator("video").click()
    frame.wait_for_function("() => document.querySelector('video').paused")
    assert problems == []


def test_unlisted_embed_plays_by_link(
    platform: Any, context: Any, videos: dict[str, str], other_site: str
) -> None:
    page, problems = open_page(context)
    src = f"{platform.url}/embed/{videos['unlisted']}?autoplay=1&muted=1"
    frame = embed_frame(page, other_site, src)
    frame.wait_for_function("() => document.querySelector('video').currentTime > 0.5")
    assert frame.locator(".embed__title").text_content() == "By link only"
    assert problems == []


def test_private_embed_says_so_and_loads_no_media(
    platform: Any, context: Any, videos: dict[str, str], other_site: str
) -> None:
    page, problems = open_page(context)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    frame = embed_frame(page, other_site, f"{platform.url}/embed/{videos['private']}?autoplay=1")
    message = frame.locator("[data-state=unavailable]")
    message.wait_for()
    assert "This video is private" in (message.text_content() or "")
    assert frame.locator("video").count() == 0
    assert "My diary" not in frame.content()
    media = [u for u in requests if "/storage/" in u or "/api/gallery/stream" in u]
    assert media == []
    assert not any(u.endswith(("/embed.js", "/shaka-player.js")) for u in requests)
    assert problems == []


def test_the_watch_page_cannot_be_framed(
    platform: Any, context: Any, videos: dict[str, str], other_site: str
) -> None:
    page, _ = open_page(context)
    watch = f"{platform.url}/watch/{videos['public']}"
    page.goto(f"{other_site}/frame?src={quote(watch, safe='')}")
    handle = page.wait_for_selector("#player")
    page.wait_for_timeout(500)
    frame = handle.content_frame()
    # Chromium replaces a refused frame's document with its error page.
    assert frame is None or frame.locator("#main").count() == 0


def test_share_link_at_current_time_seeks_there(
    platform: Any, context: Any, videos: dict[str, str]
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=platform.url)
    page, problems = open_page(context)
    page.goto(f"{platform.url}/watch/{videos['public']}")
    page.wait_for_selector("video[data-engine]")
    # The title is text on the watch page too.
    assert page.locator("h1.watch__title").text_content() == HOSTILE
    page.evaluate("() => { const v = document.querySelector('video'); v.currentTime = 5; }")
    page.wait_for_function(
        "() => document.querySelector('[data-share=timed]').value.endsWith('?t=5')"
    )
    timed = page.locator("[data-share=timed]").input_value()
    assert timed == f"{platform.url}/watch/{videos['public']}?t=5"
    link = page.locator("[data-share=link]").input_value()
    assert link == f"{platform.url}/watch/{videos['public']}"
    code = page.locator("[data-share=embed]")
    code.wait_for()
    assert f'src="{platform.url}/embed/{videos["public"]}"' in code.input_value()
    assert "&lt;script&gt;" in code.input_value(), "the title is escaped in the code"
    page.locator("[data-copy=timed]").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).endsWith('?t=5')")
    assert page.evaluate("() => navigator.clipboard.readText()") == timed
    assert problems == []

    opened, opened_problems = open_page(context)
    opened.goto(timed)
    opened.wait_for_selector("video[data-engine]")
    opened.wait_for_function("() => document.querySelector('video').currentTime >= 5")
    assert opened.evaluate("() => document.querySelector('video').currentTime") < 9
    assert opened.evaluate("() => window.__xss") is None
    assert [p for p in [*problems, *opened_problems] if p.startswith("dialog")] == []
