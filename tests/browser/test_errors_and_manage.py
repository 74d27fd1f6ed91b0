"""What the site shows when things go wrong, and the owner's retry and delete controls."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import PASSWORD

pytestmark = pytest.mark.browser


def test_rejected_upload_failed_import_retry_and_delete(
    platform: Any, browser: Any, clips_dir: Path, screenshots: Path
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:10]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}/signup")
        page.get_by_label("Email").fill(f"errors-{token}@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/my")

        # A web page named .mp4, dropped on the drop zone, is refused when the upload is
        # confirmed (type sniffing), and the page says why.
        fake = clips_dir / f"notes-{token}.mp4"
        fake.write_text("<!doctype html><html><body><script>alert(1)</script></body></html>")
        dropped = page.evaluate_handle(
            """([name, text]) => {
              const dt = new DataTransfer();
              dt.items.add(new File([text], name, {type: 'video/mp4'}));
              return dt;
            }""",
            [fake.name, fake.read_text()],
        )
        # The first attempt loses its connection; the page retries by itself.
        posts: list[str] = []

        def drop_first_post(route: Any) -> None:
            if route.request.method != "POST":
                route.continue_()
                return
            posts.append(route.request.url)
            if len(posts) == 1:
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route(re.compile(r"/storage/"), drop_first_post)
        zone = page.locator(".dropzone")
        zone.dispatch_event("dragenter", {"dataTransfer": dropped})
        assert "dropzone--over" in (zone.get_attribute("class") or "")
        zone.dispatch_event("drop", {"dataTransfer": dropped})
        failed = page.locator('li.upload[data-state="failed"]', has_text=fake.name)
        failed.wait_for(timeout=30_000)
        message = failed.locator(".upload__status").inner_text()
        assert message.startswith("Failed: ")
        assert len(message) > len("Failed: ") + 10, message
        assert len(posts) == 2, "the dropped upload was retried"
        assert failed.get_by_role("button", name="Try again").count() == 0, "415 is final"
        page.unroute_all()
        assert page.locator("li.video-row").count() == 0

        # A malformed import link is refused with the API's own message.
        page.get_by_label("Video URL").fill("http://user:secret@example.com/video.mp4")
        page.get_by_role("button", name="Import").click()
        page.get_by_role("alert").get_by_text(
            "That link cannot be imported: URLs with a user name or password are not allowed."
        ).wait_for()

        # A name that resolves to a private address passes the form (no DNS there), then
        # fails in the worker (SSRF guard); the row shows the reason and, as another run
        # would be refused the same way, offers no retry.
        # The title carries markup: it must show as text, never become an element.
        title = f'<img src=x onerror="window.__xss=1">Blocked import {token}'

        page.get_by_label("Video URL").fill("http://localhost/blocked.mp4")
        page.get_by_label("Title (optional)").fill(title)
        page.get_by_role("button", name="Import").click()
        row = page.locator("li.video-row", has_text=title)
        row.wait_for()
        video_id = row.get_attribute("data-video-id")
        row_sel = f'li.video-row[data-video-id="{video_id}"]'
        page.wait_for_selector(f'{row_sel}[data-status="failed"]', timeout=60_000)
        assert page.locator(f"{row_sel} .video-row__title").inner_text() == title
        assert page.locator(f"{row_sel} .video-row__title img").count() == 0
        assert page.evaluate("window.__xss") is None
        reason = page.locator(f"{row_sel} .form-error").inner_text()
        assert reason.strip(), "the failure reason is shown"
        assert page.locator(f"{row_sel} .badge--private").count() == 1
        page.screenshot(path=screenshots / "my-videos-errors.png", full_page=True)

        assert page.locator(row_sel).get_by_role("button", name="Retry").count() == 0

        # Delete asks first; cancelling keeps the video, confirming removes it.
        page.locator(row_sel).get_by_role("button", name="Delete").click()
        dialog = page.get_by_role("dialog", name="Delete this video?")
        dialog.get_by_role("button", name="Cancel").click()
        assert page.locator(row_sel).count() == 1
        page.locator(row_sel).get_by_role("button", name="Delete").click()
        with page.expect_response(
            lambda r: r.request.method == "DELETE" and r.url.endswith(f"/videos/{video_id}")
        ) as deleted:
            dialog.get_by_role("button", name="Delete").click()
        assert deleted.value.status == 204
        page.locator(row_sel).wait_for(state="detached")
        page.reload()
        page.get_by_text("You have no videos yet. Upload one above.").wait_for()
        assert errors == []
    finally:
        context.close()
