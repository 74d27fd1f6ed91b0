"""Playlists in a real Chromium: make one on "My playlists", add two videos with the
watch page's "Save", reorder them on the playlist page, play it through (the list
beside the player, the current video highlighted, autoplay-next when one ends, "Next",
the remembered autoplay switch), Watch later add and remove; and a private video in
someone's public playlist is an unavailable entry for another user, whose page lists
the uploader's public playlists."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import AXE, DESKTOP, axe, log_in, watch

pytestmark = pytest.mark.browser


def account(base: str, name: str) -> ApiUser:
    """A new account whose display name is ``name``, capitalised."""
    return ApiUser(base, f"{name}-{uuid.uuid4().hex[:8]}@example.com", display_name=name.title())


@pytest.fixture(scope="module")
def library(
    platform: Any, clip_factory: Callable[..., Path], clips_dir: Path
) -> Iterator[dict[str, Any]]:
    clip = clip_factory(clips_dir / "playlist.mp4", seconds=3)
    owner = account(platform.url, "owner")
    viewer = account(platform.url, "viewer")
    jobs = {
        "first": owner.upload(clip, title="First clip"),
        "second": owner.upload(clip, title="Second clip"),
        "secret": owner.upload(clip, title="Secret diary", visibility="private"),
    }
    videos = {name: str(job["video_id"]) for name, job in jobs.items()}
    for video_id in videos.values():
        owner.wait_video(video_id, "ready", timeout=180)
    try:
        yield {"owner": owner, "viewer": viewer, "videos": videos}
    finally:
        owner.http.close()
        viewer.http.close()


def _page(browser: Any, problems: list[str]) -> Any:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"error: {e}"))
    return page


def _titles(page: Any) -> list[str]:
    return [
        t.strip()
        for t in page.locator("ol.playlist__items .playlist-item__title").all_inner_texts()
    ]


def _finish(page: Any) -> None:
    """Play the current video from just before its end."""
    page.wait_for_function(
        "() => { const v = document.querySelector('video.player__video');"
        " return v && v.readyState >= 1 && isFinite(v.duration) && v.duration > 0; }"
    )
    page.evaluate(
        "() => { const v = document.querySelector('video.player__video');"
        " v.muted = true; v.currentTime = Math.max(0, v.duration - 0.4); v.play(); }"
    )


def test_make_fill_reorder_and_play_through_a_playlist(
    platform: Any, browser: Any, library: dict[str, Any], screenshots: Path
) -> None:
    base = platform.url
    owner = library["owner"]
    first, second = library["videos"]["first"], library["videos"]["second"]
    problems: list[str] = []
    page = _page(browser, problems)
    try:
        log_in(page, base, owner.email)
        page.goto(f"{base}/playlists")
        page.get_by_role("heading", name="My playlists").wait_for()
        page.locator("li.card--playlist", has_text="Watch later").wait_for()
        page.get_by_role("button", name="New playlist").click()
        dialog = page.locator("dialog[open]")
        dialog.get_by_label("Title").fill("Road trip")
        dialog.get_by_label("Visibility").select_option("public")
        dialog.get_by_role("button", name="Create").click()
        page.wait_for_url(f"{base}/playlist/*")
        playlist_id = page.url.rsplit("/", 1)[-1]
        page.get_by_role("heading", name="Road trip").wait_for()

        # Save both videos to it from their watch pages.
        for video_id in (first, second):
            page.goto(f"{base}/watch/{video_id}")
            page.get_by_role("button", name="Save", exact=True).click()
            save = page.locator("dialog.save-dialog")
            box = save.get_by_label("Road trip")
            box.check()
            page.locator(".toast", has_text="Saved to Road trip").first.wait_for()
            assert box.is_checked()
            save.get_by_role("button", name="Done").click()

        page.goto(f"{base}/playlist/{playlist_id}")
        page.locator("li.playlist-item").nth(1).wait_for()
        assert _titles(page) == ["First clip", "Second clip"]
        page.get_by_role("button", name="Move “Second clip” up").click()
        page.wait_for_function(
            "() => document.querySelector('ol.playlist__items li .playlist-item__title')"
            ".textContent === 'Second clip'"
        )
        page.reload()
        page.locator("li.playlist-item").nth(1).wait_for()
        assert _titles(page) == ["Second clip", "First clip"]  # the server kept the order
        page.screenshot(path=str(screenshots / "playlist-page.png"), full_page=True)

        # Play all: the second clip first, in the list beside the player.
        page.get_by_role("link", name="Play all").click()
        page.wait_for_url(f"{base}/watch/{second}?list={playlist_id}")
        panel = page.locator("aside.playlist-panel")
        current = panel.locator('a[aria-current="true"]')
        current.wait_for()
        assert "Second clip" in current.inner_text()
        assert panel.locator(".playlist-panel__count").inner_text() == "1 / 2"
        autoplay = panel.get_by_label("Autoplay")
        assert autoplay.is_checked()
        page.screenshot(path=str(screenshots / "playlist-watch.png"))

        # It ends: the next one opens and plays by itself.
        _finish(page)
        page.wait_for_url(f"{base}/watch/{first}?list={playlist_id}", timeout=30_000)
        panel.locator('a[aria-current="true"]', has_text="First clip").wait_for()
        page.wait_for_function(
            "() => { const v = document.querySelector('video.player__video');"
            " return v && !v.paused && v.currentTime > 0; }",
            timeout=30_000,
        )
        # The last one has no next.
        assert panel.get_by_role("button", name="Next ▶").is_disabled()

        # "Next" by hand; autoplay off is remembered, and an ending then goes nowhere.
        page.goto(f"{base}/watch/{second}?list={playlist_id}")
        page.locator('aside.playlist-panel a[aria-current="true"]').wait_for()
        page.locator("aside.playlist-panel").get_by_label("Autoplay").uncheck()
        page.reload()
        panel = page.locator("aside.playlist-panel")
        panel.locator('a[aria-current="true"]').wait_for()
        assert not panel.get_by_label("Autoplay").is_checked()
        _finish(page)
        page.wait_for_function(
            "() => document.querySelector('video.player__video').ended", timeout=30_000
        )
        page.wait_for_timeout(500)
        assert page.url == f"{base}/watch/{second}?list={playlist_id}"
        panel.get_by_role("button", name="Next ▶").click()
        page.wait_for_url(f"{base}/watch/{first}?list={playlist_id}")
        page.locator("aside.playlist-panel").get_by_label("Autoplay").check()

        # Watch later: add from the watch page, see it in the list, remove it there.
        page.goto(f"{base}/watch/{first}")
        later = page.get_by_role("button", name="Watch later")
        later.wait_for()
        later.click()
        page.get_by_role("button", name="✓ In Watch later").wait_for()
        page.goto(f"{base}/playlists")
        page.locator("li.card--playlist", has_text="Watch later").get_by_role("link").click()
        page.get_by_role("heading", name="Watch later").wait_for()
        page.locator("li.playlist-item").first.wait_for()
        assert _titles(page) == ["First clip"]
        assert page.get_by_role("button", name="Delete playlist").count() == 0  # fixed
        page.get_by_role("button", name="Remove “First clip” from the playlist").click()
        page.locator("li.playlist-item").first.wait_for(state="detached")
        page.goto(f"{base}/watch/{first}")
        page.locator(
            ".save-actions button[aria-pressed='false']", has_text="Watch later"
        ).wait_for()
        assert problems == [], problems
    finally:
        page.context.close()


def test_a_private_video_in_a_public_playlist_is_unavailable_to_others(
    platform: Any, browser: Any, library: dict[str, Any], screenshots: Path
) -> None:
    base = platform.url
    owner, viewer = library["owner"], library["viewer"]
    made = owner.http.post(
        "/api/gallery/playlists", json={"title": "Shared mix", "visibility": "public"}
    )
    assert made.status_code == 201, made.text
    playlist_id = made.json()["id"]
    for key in ("first", "secret", "second"):
        added = owner.http.post(
            f"/api/gallery/playlists/{playlist_id}/videos",
            json={"video_id": library["videos"][key]},
        )
        assert added.status_code == 201, added.text
    problems: list[str] = []
    page = _page(browser, problems)
    try:
        log_in(page, base, viewer.email)
        page.goto(f"{base}/playlist/{playlist_id}")
        page.locator("li.playlist-item").nth(2).wait_for()
        assert _titles(page) == ["First clip", "Unavailable video", "Second clip"]
        assert "Secret diary" not in page.content()
        assert library["videos"]["secret"] not in page.content()
        unavailable = page.locator("li.playlist-item--unavailable")
        assert unavailable.locator("a, img").count() == 0
        page.screenshot(path=str(screenshots / "playlist-unavailable.png"), full_page=True)

        # Played through, the unavailable entry is skipped: "Next" after the first clip
        # is the second.
        page.goto(f"{base}/watch/{library['videos']['first']}?list={playlist_id}")
        panel = page.locator("aside.playlist-panel")
        panel.locator('a[aria-current="true"]').wait_for()
        assert panel.locator(".playlist-panel__item--unavailable").count() == 1
        panel.get_by_role("button", name="Next ▶").click()
        page.wait_for_url(f"{base}/watch/{library['videos']['second']}?list={playlist_id}")

        # The uploader's page lists their public playlists.
        page.goto(f"{base}/?owner={owner.id}")
        section = page.locator("section.owner-playlists")
        section.locator("li.card--playlist", has_text="Shared mix").wait_for()
        assert problems == [], problems
    finally:
        page.context.close()


HOSTILE_TITLE = "<img src=x onerror=\"alert('title')\"> Mix"
HOSTILE_DESCRIPTION = (
    "<script>alert('description')</script> javascript:alert('js') "
    "More at https://example.com/notes?a=1&b=2."
)


def test_hostile_playlist_text_stays_text(
    platform: Any, context: Any, library: dict[str, Any]
) -> None:
    """A playlist's title and description are shown as typed, to another user, on its
    page, beside the player and on the uploader's page: no element is made of them, no
    dialog opens, and only the https link is a link (rel="nofollow ugc noopener")."""
    base = platform.url
    owner, viewer = library["owner"], library["viewer"]
    made = owner.http.post(
        "/api/gallery/playlists",
        json={
            "title": HOSTILE_TITLE,
            "description": HOSTILE_DESCRIPTION,
            "visibility": "public",
        },
    )
    assert made.status_code == 201, made.text
    playlist_id = made.json()["id"]
    added = owner.http.post(
        f"/api/gallery/playlists/{playlist_id}/videos",
        json={"video_id": library["videos"]["first"]},
    )
    assert added.status_code == 201, added.text
    problems: list[str] = []
    page = context.new_page()
    watch(page, problems)
    log_in(page, base, viewer.email)
    page.goto(f"{base}/playlist/{playlist_id}")
    page.locator("li.playlist-item").first.wait_for()
    assert page.locator("h1.playlist__title").inner_text() == HOSTILE_TITLE
    description = page.locator(".playlist__description")
    assert description.inner_text() == HOSTILE_DESCRIPTION
    links = description.locator("a")
    assert links.count() == 1
    assert links.get_attribute("href") == "https://example.com/notes?a=1&b=2"
    assert links.get_attribute("rel") == "nofollow ugc noopener"
    assert page.locator("main script, main img[src='x']").count() == 0

    page.goto(f"{base}/watch/{library['videos']['first']}?list={playlist_id}")
    panel = page.locator("aside.playlist-panel")
    panel.locator(".playlist-panel__title", has_text=HOSTILE_TITLE).wait_for()
    page.goto(f"{base}/?owner={owner.id}")
    card = page.locator("section.owner-playlists li.card--playlist", has_text=HOSTILE_TITLE)
    card.wait_for()
    assert page.locator("main img[src='x']").count() == 0
    assert problems == [], problems


def test_axe_finds_no_serious_problem_on_the_playlist_pages(
    platform: Any, browser: Any, library: dict[str, Any]
) -> None:
    assert AXE.exists(), "npm install (axe-core is in package.json)"
    base = platform.url
    owner = library["owner"]
    made = owner.http.post(
        "/api/gallery/playlists", json={"title": "Axe", "visibility": "unlisted"}
    )
    assert made.status_code == 201, made.text
    playlist_id = made.json()["id"]
    for key in ("first", "secret"):
        owner.http.post(
            f"/api/gallery/playlists/{playlist_id}/videos",
            json={"video_id": library["videos"][key]},
        )
    findings: list[str] = []
    problems: list[str] = []
    # The site's CSP allows no inline script: let the test inject axe-core anyway.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"error: {e}"))
    try:
        log_in(page, base, owner.email)
        page.goto(f"{base}/playlists")
        page.locator("li.card--playlist").first.wait_for()
        findings += axe(page, "my playlists")
        page.goto(f"{base}/playlist/{playlist_id}")
        page.locator("li.playlist-item").nth(1).wait_for()
        findings += axe(page, "playlist (owner)")
        page.goto(f"{base}/watch/{library['videos']['first']}?list={playlist_id}")
        page.locator('aside.playlist-panel a[aria-current="true"]').wait_for()
        findings += axe(page, "watch with playlist")
        page.get_by_role("button", name="Save", exact=True).click()
        page.locator("dialog.save-dialog .save-list__item").first.wait_for()
        findings += axe(page, "save dialog")
        assert findings == [], "\n".join(findings)
        assert problems == [], problems
    finally:
        context.close()
