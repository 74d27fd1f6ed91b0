"""The owner's captions in the web client: the Captions dialog of the watch page lists a
video's tracks, uploads an SRT file for a language (a file that does not parse is
refused with the server's message naming the line), the player then offers the track,
and Delete removes it again. My videos opens the same dialog."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import DESKTOP, axe, log_in, watch

pytestmark = pytest.mark.browser

GOOD = b"1\n00:00:00,200 --> 00:00:00,900\nHallo Welt\n"
BAD = b"1\n00:00:00,200 -> 00:00:00,900\nHallo Welt\n"
TEXT_LANGUAGES = "() => window.vfPlayer.getTextTracks().map(t => t.language)"
#: Safe while the reloaded page has no player yet.
HAS_GERMAN = "() => Boolean(window.vfPlayer?.getTextTracks().some(t => t.language === 'de'))"


def caption_file(body: bytes, name: str = "de.srt") -> dict[str, Any]:
    return {"name": name, "mimeType": "application/x-subrip", "buffer": body}


def test_owner_uploads_replaces_and_deletes_captions(
    platform: Any,
    browser: Any,
    clip_factory: Callable[..., Path],
    tmp_path: Path,
    screenshots: Path,
) -> None:
    email = f"captions-{uuid.uuid4().hex[:10]}@example.com"
    owner = ApiUser(platform.url, email)
    try:
        video_id = owner.upload_ready(
            clip_factory(tmp_path / "captions.mp4", seconds=2), title="Caption me"
        )
    finally:
        owner.close()
    # CSP bypassed only so that axe-core can be injected into the page.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(20_000)
    try:
        run_journey(context, platform.url, email, video_id, screenshots)
    finally:
        context.close()


def run_journey(context: Any, base: str, email: str, video_id: str, screenshots: Path) -> None:
    page = context.new_page()
    problems = watch(page, [])
    log_in(page, base, email)
    page.goto(f"{base}/watch/{video_id}")
    page.wait_for_function("() => window.vfPlayer && window.vfPlayer.getVariantTracks().length")
    assert page.evaluate(TEXT_LANGUAGES) == []

    # The owner's button (shaka's own caption buttons are in the player).
    page.locator(".watch__actions").get_by_role("button", name="Captions", exact=True).click()
    dialog = page.get_by_role("dialog", name="Captions")
    dialog.get_by_text("No captions yet.").wait_for()
    # A file that does not parse: the server's message, naming the line, in the dialog.
    dialog.get_by_label("Language").fill("de")
    dialog.get_by_label("SRT or WebVTT file").set_input_files(caption_file(BAD))
    dialog.get_by_role("button", name="Upload").click()
    dialog.get_by_role("alert").filter(has_text="Line 2").wait_for()

    dialog.get_by_label("Language").fill("de")
    dialog.get_by_label("Name shown in the player").fill("Deutsch")
    dialog.get_by_label("SRT or WebVTT file").set_input_files(caption_file(GOOD))
    dialog.get_by_role("button", name="Upload").click()
    dialog.get_by_role("status").filter(has_text="Deutsch saved (1 cue)").wait_for()
    item = dialog.locator('.captions-list__item[data-language="de"]')
    assert item.locator(".captions-list__name").inner_text() == "Deutsch"
    assert "Uploaded by you" in item.inner_text()
    assert dialog.get_by_role("alert").is_hidden()
    page.screenshot(path=screenshots / "captions-dialog.png")
    assert axe(page, "captions dialog") == []

    # Closing reloads the player, which now offers the track.
    dialog.get_by_role("button", name="Close").click()
    page.wait_for_function(HAS_GERMAN)

    # My videos opens the same dialog; Delete removes the uploaded track.
    page.goto(f"{base}/my")
    row = page.locator(f'.video-row[data-video-id="{video_id}"]')
    row.get_by_role("button", name="Captions").click()
    dialog = page.get_by_role("dialog", name="Captions")
    dialog.get_by_role("button", name="Delete Deutsch").click()
    dialog.get_by_text("No captions yet.").wait_for()
    dialog.get_by_role("button", name="Close").click()
    page.goto(f"{base}/watch/{video_id}")
    page.wait_for_function("() => window.vfPlayer && window.vfPlayer.getVariantTracks().length")
    assert page.evaluate(TEXT_LANGUAGES) == []
    assert problems == []
