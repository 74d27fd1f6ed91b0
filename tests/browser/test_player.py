"""The watch page's player (shaka-player and its UI) in a real Chromium.

One source made here with ffmpeg (two audio tracks in two languages, an SRT subtitle
track and container chapters) is uploaded through the platform's HTTP API and processed
by its worker; the tests then watch it: captions show their cues, the audio track and the
quality switch, chapters seek, the storyboard previews the seek bar, the DASH manifest
plays, YouTube's keyboard shortcuts work, a tap plays, and a reload resumes.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import views_unavailable_once

pytestmark = pytest.mark.browser

SECONDS = 20
SRT = """1
00:00:01,000 --> 00:00:04,000
Hello from the harbour

2
00:00:05,000 --> 00:00:09,000
Second caption
"""
CHAPTERS = """;FFMETADATA1
[CHAPTER]
TIMEBASE=1/1000
START=0
END=6000
title=Arrival
[CHAPTER]
TIMEBASE=1/1000
START=6000
END=12000
title=On the water
[CHAPTER]
TIMEBASE=1/1000
START=12000
END=20000
title=Sunset
"""
#: The <video> has metadata (a click before that can be lost).
HAS_METADATA = "() => document.querySelector('video')?.readyState >= 1"


def make_source(root: Path) -> Path:
    """640x480 (two rungs: 480p and 360p), English and French audio, English SRT, three
    container chapters."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "en.srt").write_text(SRT)
    (root / "chapters.txt").write_text(CHAPTERS)
    target = root / "harbour.mkv"
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "lavfi", "-i", f"testsrc2=s=640x480:r=25:d={SECONDS}",
            "-f", "lavfi", "-i", f"sine=f=440:d={SECONDS}",
            "-f", "lavfi", "-i", f"sine=f=660:d={SECONDS}",
            "-i", str(root / "en.srt"), "-i", str(root / "chapters.txt"),
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3", "-map_chapters", "4",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-c:s", "srt",
            "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English",
            "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français",
            "-disposition:a:0", "default", "-disposition:a:1", "0",
            "-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=English",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return target


def upload_and_process(base: str, clip: Path) -> str:
    """Sign up, upload ``clip`` through a presigned URL, confirm it as a public video,
    start its job and wait until the video is ready; returns its id."""
    user = ApiUser(base, f"player-{uuid.uuid4().hex[:10]}@example.com")
    try:
        return user.upload_ready(clip, title="Harbour tour", content_type="video/x-matroska")
    finally:
        user.close()


@pytest.fixture(scope="module")
def video_id(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return upload_and_process(platform.url, make_source(tmp_path_factory.mktemp("player")))


def open_page(context: Any) -> tuple[Any, list[str]]:
    """A new page and the JavaScript errors (and CSP violations) it reports."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, errors


def watch(page: Any, base: str, video_id: str) -> None:
    """Open the watch page and wait until shaka has loaded the manifest."""
    page.goto(f"{base}/watch/{video_id}")
    page.wait_for_selector("video[data-engine]")
    page.wait_for_function(HAS_METADATA)
    page.wait_for_function("() => window.vfPlayer && window.vfPlayer.getVariantTracks().length > 0")


def play(page: Any) -> None:
    """Start playback as a viewer would (a click on the picture) and see time advance."""
    page.locator(".shaka-play-button").click()
    page.wait_for_function("() => document.querySelector('video').currentTime > 0.3")


def open_menu(page: Any, item: str) -> Any:
    """Open the player's settings menu (⋮) and one of its submenus; returns the submenu."""
    page.locator(".player").hover()
    overflow = page.locator(".shaka-overflow-menu")
    # After a choice shaka goes back to this menu, still open: a click would close it.
    if not overflow.is_visible():
        page.get_by_role("button", name="More settings").click()
    overflow.locator(f".{item}").click()
    return page.locator(".shaka-settings-menu:not(.shaka-hidden)")


def test_dash_plays_with_shaka_and_counts_the_view(
    platform: Any, context: Any, video_id: str, screenshots: Path
) -> None:
    page, errors = open_page(context)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    watch(page, platform.url, video_id)
    video = page.locator("video")
    assert video.get_attribute("data-engine") == "dash"
    assert re.search(r"/dash/manifest\.mpd", video.get_attribute("data-source") or "")
    assert video.get_attribute("controls") is None, "shaka's controls, not the browser's"
    with page.expect_response(lambda r: r.url.endswith(f"/videos/{video_id}/views")) as view:
        play(page)
    assert view.value.status == 202
    assert any(re.search(r"/vendor/shaka-player\.ui\.js$", u) for u in requests)
    assert not any("hls.min.js" in u or "googleapis" in u or "gstatic" in u for u in requests)
    assert any(re.search(r"\.m4s(\?|$)", u) for u in requests), "media segments were fetched"
    page.screenshot(path=screenshots / "watch-shaka.png")
    assert errors == []


def test_a_view_refused_during_an_outage_is_posted_again_after_retry_after(
    platform: Any, context: Any, video_id: str
) -> None:
    page, errors = open_page(context)
    posts = views_unavailable_once(page, video_id, retry_after=2)
    watch(page, platform.url, video_id)
    with page.expect_response(
        lambda r: r.url.endswith(f"/videos/{video_id}/views") and r.status == 202,
        timeout=15_000,
    ) as view:
        play(page)
    assert view.value.request.method == "POST"
    assert len(posts) == 2  # the 503, then the same view again
    assert posts[1] - posts[0] >= 1.8  # not before the server's Retry-After
    time.sleep(1)
    assert len(posts) == 2  # and no more once it was answered
    assert errors == []


def test_hls_when_dash_fails_then_one_mp4(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    page.route(re.compile(r"manifest\.mpd"), lambda route: route.abort("failed"))
    watch(page, platform.url, video_id)
    assert page.locator("video").get_attribute("data-engine") == "hls"
    assert "master.m3u8" in (page.locator("video").get_attribute("data-source") or "")
    play(page)

    both, both_errors = open_page(context)
    both.route(re.compile(r"manifest\.mpd|master\.m3u8"), lambda route: route.abort("failed"))
    both.goto(f"{platform.url}/watch/{video_id}")
    both.wait_for_selector('video[data-engine="mp4"]')
    assert "fixed quality" in both.locator(".watch .notice").inner_text()
    both.wait_for_function(HAS_METADATA)
    play(both)
    assert errors == []
    assert both_errors == []


def test_captions_show_their_cues(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    tracks = page.evaluate("window.vfPlayer.getTextTracks().map(t => t.language)")
    assert tracks.count("en") == 1, f"one English track, not a duplicate: {tracks}"
    play(page)
    # Captions from the menu, then a moment inside the first cue.
    menu = open_menu(page, "shaka-caption-button")
    menu.locator("button", has_text=re.compile("English")).first.click()
    page.wait_for_function("() => window.vfPlayer.isTextTrackVisible()")
    page.evaluate("document.querySelector('video').pause()")
    page.evaluate("document.querySelector('video').currentTime = 2")
    page.locator(".shaka-text-container", has_text="Hello from the harbour").wait_for()
    assert page.locator(".shaka-text-container", has_text="Second caption").count() == 0
    page.evaluate("document.querySelector('video').currentTime = 6")
    page.locator(".shaka-text-container", has_text="Second caption").wait_for()
    assert errors == []


def test_audio_track_switches(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    assert sorted(page.evaluate("window.vfPlayer.getAudioLanguages()")) == ["en", "fr"]
    active = "() => window.vfPlayer.getVariantTracks().find(t => t.active)?.language"
    assert page.evaluate(active) == "en"
    play(page)
    menu = open_menu(page, "shaka-language-button")
    menu.locator("button", has_text=re.compile("Fran", re.IGNORECASE)).first.click()
    page.wait_for_function(f"() => ({active})() === 'fr'")
    page.wait_for_function("() => !document.querySelector('video').paused")
    assert errors == []


def test_quality_menu_switches_rungs(
    platform: Any, context: Any, video_id: str, screenshots: Path
) -> None:
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    play(page)
    for label, height in (("360p", 360), ("480p", 480)):
        menu = open_menu(page, "shaka-resolution-button")
        menu.locator("button", has_text=label).first.click()
        page.wait_for_function(
            f"() => document.querySelector('video').videoHeight === {height}", timeout=20_000
        )
    page.screenshot(path=screenshots / "watch-shaka-quality.png")
    menu = open_menu(page, "shaka-resolution-button")
    menu.locator("button", has_text="Auto").first.click()
    page.wait_for_function("() => window.vfPlayer.getConfiguration().abr.enabled")
    assert errors == []


def test_chapters_list_and_marks_seek(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    chapters = page.get_by_role("region", name="Chapters")
    titles = chapters.locator(".chapters__title").all_inner_texts()
    assert titles == ["Arrival", "On the water", "Sunset"]
    # Two marks on the seek bar (the first chapter starts at 0), at 6/20 and 12/20.
    marks = page.locator(".shaka-seek-bar-container .vf-chapter-mark")
    assert marks.count() == 2
    lefts = marks.evaluate_all("ms => ms.map(m => parseFloat(m.style.left))")
    assert lefts == pytest.approx([30, 60], abs=0.5)
    # shaka's chapter menu (from chapters_url) lists the same chapters.
    menu = open_menu(page, "shaka-chapter-button")
    for title in titles:
        menu.locator("button", has_text=title).wait_for()
    page.keyboard.press("Escape")
    chapters.get_by_role("button", name=re.compile("Sunset")).click()
    page.wait_for_function(
        "() => { const t = document.querySelector('video').currentTime; return t >= 12 && t < 14; }"
    )
    page.wait_for_function(
        "() => document.querySelector('.chapters__item[aria-current=true]')"
        "?.textContent.includes('Sunset')"
    )
    assert errors == []


def test_storyboard_previews_the_seek_bar(
    platform: Any, context: Any, video_id: str, screenshots: Path
) -> None:
    page, errors = open_page(context)
    sprites: list[str] = []
    page.on("request", lambda r: sprites.append(r.url) if "sprite_" in r.url else None)
    watch(page, platform.url, video_id)
    page.wait_for_function("() => window.vfPlayer.getImageTracks().length === 1")
    bar = page.locator(".shaka-seek-bar-container")
    page.locator(".player").hover()
    box = bar.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    thumb = page.locator("#shaka-player-ui-thumbnail-container")
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('#shaka-player-ui-thumbnail-container'))"
        ".visibility === 'visible'"
    )
    image = thumb.locator("#shaka-player-ui-thumbnail-image")
    page.wait_for_function(
        "(img) => /sprite_/.test(img.src) && img.complete && img.naturalWidth > 0",
        arg=image.element_handle(),
    )
    assert sprites, "the sprite sheet was fetched"
    # 15 s is in the last chapter: its name is on the preview.
    assert thumb.locator(".vf-preview-chapter").inner_text() == "Sunset"
    # The box shows one 160 px tile of the sheet (not the whole sheet squeezed in), and
    # a tile after the first ones at three quarters of the bar.
    tile = page.evaluate(
        """() => {
          const box = document.querySelector('#shaka-player-ui-thumbnail-container')
            .getBoundingClientRect();
          const img = document.querySelector('#shaka-player-ui-thumbnail-image');
          const rect = img.getBoundingClientRect();
          const scale = rect.width / img.naturalWidth;
          return { width: box.width / scale, x: (box.left - rect.left) / scale };
        }"""
    )
    assert tile["width"] == pytest.approx(160, abs=4), tile
    assert tile["x"] >= 160 * 5, tile
    assert tile["x"] / 160 == pytest.approx(round(tile["x"] / 160), abs=0.05), tile
    page.screenshot(path=screenshots / "watch-shaka-storyboard.png")

    # Dragging along the bar previews too (the thumbnail follows the handle).
    page.mouse.move(0, 0)
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('#shaka-player-ui-thumbnail-container'))"
        ".visibility === 'hidden'"
    )
    page.locator(".player").hover()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2, steps=8)
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('#shaka-player-ui-thumbnail-container'))"
        ".visibility === 'visible'"
    )
    page.mouse.up()
    page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 10) < 1.5")
    assert errors == []


def test_keyboard_shortcuts(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    page.locator("body").focus()
    video = "document.querySelector('video')"
    page.keyboard.press("k")
    page.wait_for_function(f"() => !{video}.paused")
    page.keyboard.press("k")
    page.wait_for_function(f"() => {video}.paused")
    page.keyboard.press(" ")
    page.wait_for_function(f"() => !{video}.paused")
    page.keyboard.press(" ")
    page.wait_for_function(f"() => {video}.paused")
    before = page.evaluate(f"{video}.currentTime")
    page.keyboard.press("l")
    page.wait_for_function(f"() => {video}.currentTime >= {before} + 9.5")
    page.keyboard.press("j")
    page.wait_for_function(f"() => {video}.currentTime <= {before} + 0.5")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => Math.abs({video}.currentTime - ({before} + 5)) < 0.5")
    assert page.evaluate(f"{video}.muted") is False
    page.keyboard.press("m")
    page.wait_for_function(f"() => {video}.muted")
    page.keyboard.press("m")
    page.wait_for_function(f"() => !{video}.muted")
    page.evaluate(f"{video}.volume = 0.5")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(f"{video}.volume") == pytest.approx(0.45)
    page.keyboard.press("c")
    page.wait_for_function("() => window.vfPlayer.isTextTrackVisible()")
    page.keyboard.press("c")
    page.wait_for_function("() => !window.vfPlayer.isTextTrackVisible()")
    # 0-9 jump to 0-90 % of the video, Home and End to its ends, < and > step the speed.
    for key, position in (("5", SECONDS / 2), ("0", 0), ("End", SECONDS), ("Home", 0)):
        page.keyboard.press(key)
        page.wait_for_function(f"() => Math.abs({video}.currentTime - {position}) < 0.5")
    rate = "window.vfPlayer.getPlaybackRate()"  # the element's is 0 while shaka buffers
    page.keyboard.press(">")
    page.wait_for_function(f"() => {rate} === 1.25")
    page.keyboard.press("<")
    page.keyboard.press("<")
    page.wait_for_function(f"() => {rate} === 0.75")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement?.classList.contains('player')")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null")
    assert errors == []


def test_speed_and_picture_in_picture(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    play(page)
    menu = open_menu(page, "shaka-playbackrate-button")
    menu.locator("button", has_text="1.5x").first.click()
    page.wait_for_function("() => document.querySelector('video').playbackRate === 1.5")
    # shaka takes Document Picture-in-Picture where the browser has it (the whole player
    # in a small window), else the video element's own.
    in_pip = (
        "() => Boolean(document.pictureInPictureElement || window.documentPictureInPicture?.window)"
    )
    page.get_by_role("button", name="Enter Picture-in-Picture").click()
    page.wait_for_function(in_pip)
    page.evaluate(
        "() => document.pictureInPictureElement ? document.exitPictureInPicture()"
        " : window.documentPictureInPicture.window.close()"
    )
    page.wait_for_function(f"() => !({in_pip})()")
    assert errors == []


def test_tap_plays_on_a_touch_screen(platform: Any, browser: Any, video_id: str) -> None:
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    try:
        ctx.set_default_timeout(15_000)
        page, errors = open_page(ctx)
        watch(page, platform.url, video_id)
        box = page.locator(".player").bounding_box()
        assert box
        # A tap beside the big play button, on the picture itself.
        page.touchscreen.tap(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.3")
        assert errors == []
    finally:
        ctx.close()


def test_resume_where_the_viewer_stopped(platform: Any, context: Any, video_id: str) -> None:
    page, errors = open_page(context)
    key = f"vf:resume:{video_id}"
    watch(page, platform.url, video_id)
    play(page)
    page.evaluate("document.querySelector('video').currentTime = 11")
    page.evaluate("document.querySelector('video').pause()")
    page.wait_for_function(f"() => JSON.parse(localStorage.getItem('{key}') || 'null')?.t >= 10.5")
    page.reload()
    page.wait_for_selector("video[data-engine]")
    page.wait_for_function(HAS_METADATA)
    start = page.evaluate("document.querySelector('video').currentTime")
    assert 10.5 <= start <= 12, start

    # Stopped in the last seconds: watched to the end, the next visit starts over. The
    # seek is made again while it has not held: the player's own start-position seek
    # may still land after it on a loaded machine (it then saves 11 s, correctly). Once
    # it holds, pausing again saves that position (its "seeked" may have come before
    # the other seek's save).
    page.evaluate("document.querySelector('video').pause()")
    page.wait_for_function(
        f"""() => {{
          const v = document.querySelector('video');
          if (Math.abs(v.currentTime - {SECONDS - 2}) > 0.5) v.currentTime = {SECONDS - 2};
          else if (!v.seeking) v.dispatchEvent(new Event('pause'));
          return localStorage.getItem('{key}') === null;
        }}"""
    )
    page.reload()
    page.wait_for_selector("video[data-engine]")
    page.wait_for_function(HAS_METADATA)
    assert page.evaluate("document.querySelector('video').currentTime") < 1
    assert errors == []


def test_leaving_the_watch_page_stops_the_player(
    platform: Any, context: Any, video_id: str
) -> None:
    """The shortcuts and ``window.vfPlayer`` belong to the watch page: after navigating
    away the player is gone and the keys reach nothing."""
    page, errors = open_page(context)
    watch(page, platform.url, video_id)
    page.get_by_role("link", name="Browse").click()
    page.get_by_role("heading", name="Browse videos").wait_for()
    page.wait_for_function("() => window.vfPlayer === undefined")
    assert page.locator("video").count() == 0
    page.locator("body").focus()
    # A listener left behind would drive the destroyed UI and throw.
    page.keyboard.press("k")
    page.keyboard.press("m")
    assert errors == []
