"""Resumable multipart uploads and session handling, in a real Chromium.

Network failures are injected with Playwright's request routing: a part whose connection
is reset is retried by the page; a page closed mid-upload leaves its progress in
localStorage, and choosing the same file again sends only the missing parts.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from tests.browser.api_user import PASSWORD
from tests.browser.pages import sign_up

pytestmark = pytest.mark.browser

MiB = 1024 * 1024


def part_number(url: str) -> int | None:
    """The part a presigned part URL uploads (None for any other URL)."""
    values = parse_qs(urlparse(url).query).get("pn")
    return int(values[0]) if values else None


def test_multipart_upload_retries_and_resumes_after_reload(
    platform: Any, context: Any, clip_factory: Any, clips_dir: Path, screenshots: Path
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:10]
    # 2 s of video padded to ~11 MiB: three 5 MiB parts (the platform's threshold is 6 MiB).
    clip = clip_factory(clips_dir / f"Long take {token}.mp4", pad_bytes=11 * MiB)
    size = clip.stat().st_size

    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_up(page, base, f"resume-{token}@example.com")

    attempts: dict[int, int] = {}
    held: list[Any] = []

    def flaky_store(route: Any) -> None:
        n = part_number(route.request.url)
        if route.request.method != "PUT" or n is None:
            route.continue_()
            return
        attempts[n] = attempts.get(n, 0) + 1
        if n == 2 and attempts[n] == 1:
            route.abort("connectionreset")  # a dropped connection: the page retries it
        elif n == 3:
            held.append(route)  # never answered: the upload is still running when we leave
        else:
            route.continue_()

    page.route(re.compile(r"/storage/"), flaky_store)
    page.locator(".dropzone input[type=file]").set_input_files(str(clip))
    page.wait_for_function(
        """() => {
          const rec = Object.values(JSON.parse(localStorage.getItem('vf.uploads.v1') || '{}'))[0];
          return rec && Object.keys(rec.done).length === 2;
        }""",
        timeout=30_000,
    )
    assert attempts[1] == 1
    assert attempts[2] == 2, "the reset part was retried"
    assert held, "part 3 was in flight"
    record = page.evaluate("Object.values(JSON.parse(localStorage.getItem('vf.uploads.v1')))[0]")
    assert record["size"] == size
    assert sorted(record["done"]) == ["1", "2"]
    assert record["uploadId"]
    assert record["key"]

    # Leave mid-upload (as a reload or a crash would), then come back in a new page. The
    # held part is cut, never let through: unrouting first could hand it to the network
    # before the page is gone (under load the store then had part 3, and showed 100%).
    for route in held:
        route.abort("connectionreset")
    page.close(run_before_unload=False)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(f"{r.method} {r.url}"))
    page.goto(f"{base}/my")
    pending = page.locator(".pending__item", has_text=clip.name)
    pending.wait_for()
    assert "66% sent" in pending.inner_text()
    page.screenshot(path=screenshots / "my-videos-interrupted-upload.png", full_page=True)
    pending.locator("input[type=file]").set_input_files(str(clip))

    page.wait_for_selector('li.upload[data-state="done"]', timeout=30_000)
    part_puts = [part_number(s.split(" ", 1)[1]) for s in sent if s.startswith("PUT ")]
    assert part_puts == [3], "only the missing part was sent again"
    assert any(s.endswith("/api/upload/multipart/parts") for s in sent), "its URL was re-signed"
    assert any(s.endswith("/api/upload/multipart/complete") for s in sent)
    assert page.evaluate("localStorage.getItem('vf.uploads.v1')") == "{}"
    assert page.locator(".pending__item").count() == 0

    # The reassembled file is the real video: it processes to ready.
    row = page.locator("li.video-row", has_text=f"Long take {token}")
    row.wait_for()
    video_id = row.get_attribute("data-video-id")
    page.wait_for_selector(
        f'li.video-row[data-video-id="{video_id}"][data-status="ready"]', timeout=90_000
    )
    assert errors == []


def test_login_refresh_and_logout(platform: Any, context: Any, screenshots: Path) -> None:
    base = platform.url
    email = f"session-{uuid.uuid4().hex[:10]}@example.com"
    page = context.new_page()

    # A protected page sends an anonymous visitor to log in, and back afterwards.
    page.goto(f"{base}/my")
    page.wait_for_url(re.compile(r"/login\?next=%2Fmy$"))
    page.get_by_role("link", name="Create an account").click()
    page.get_by_role("heading", name="Create your account").wait_for()
    page.screenshot(path=screenshots / "signup.png")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    assert page.get_by_role("alert").inner_text() == "Choose a password of at least 8 characters."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/my")

    # Reloading keeps the session: only the refresh token is stored, the access token is not.
    stored = page.evaluate("Object.keys(localStorage)")
    assert "vf.refresh_token" in stored
    # The authoritative copy is in IndexedDB (consistent across tabs at once).
    in_idb = page.evaluate(
        """() => new Promise((resolve, reject) => {
          const req = indexedDB.open('videoforge');
          req.onsuccess = () => {
            const get = req.result.transaction('session').objectStore('session')
              .get('vf.refresh_token');
            get.onsuccess = () => resolve(get.result);
            get.onerror = () => reject(get.error);
          };
          req.onerror = () => reject(req.error);
        })"""
    )
    assert in_idb == page.evaluate("localStorage.getItem('vf.refresh_token')")
    page.reload()
    page.get_by_role("heading", name="My videos").wait_for()
    assert page.locator("#account-name").inner_text() == email

    # Two tabs starting at the same moment both refresh with the one stored (rotating)
    # token; the cross-tab lock makes the second use the rotated token instead of
    # replaying the old one (which the server treats as theft and revokes everything).
    second = context.new_page()
    second.goto(f"{base}/my")
    second.get_by_role("heading", name="My videos").wait_for()
    for tab in (page, second):
        tab.evaluate("setTimeout(() => location.reload(), 0)")
    for tab in (page, second):
        tab.wait_for_load_state("load")
        tab.get_by_role("heading", name="My videos").wait_for()
        tab.wait_for_function(
            "(email) => document.getElementById('account-name').textContent === email", arg=email
        )
    second.reload()
    second.get_by_role("heading", name="My videos").wait_for()
    assert second.locator("#account-name").inner_text() == email, "the session survived"
    second.close()

    # An expired access token (401) is refreshed once and the request retried.
    failed_once: list[str] = []

    def expire_once(route: Any) -> None:
        if not failed_once:
            failed_once.append(route.request.url)
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error": {"code": "token_expired", "message": "Token expired."}}',
            )
        else:
            route.continue_()

    page.route(re.compile(r"/api/gallery/videos\?owner=me"), expire_once)
    with page.expect_response(re.compile(r"/api/auth/refresh$")) as refreshed:
        page.get_by_role("link", name="Browse").click()
        page.get_by_role("link", name="My videos").click()
    assert refreshed.value.status == 200
    page.get_by_text("You have no videos yet. Upload one above.").wait_for()
    assert len(failed_once) == 1
    page.unroute_all()

    # Log out, then a wrong password shows the API's message; the right one logs in.
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").wait_for()
    assert page.evaluate("localStorage.getItem('vf.refresh_token')") is None
    page.goto(f"{base}/login")
    # Keyboard only: type, Tab to the next field, Enter submits.
    page.get_by_label("Email").focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    page.get_by_role("alert").get_by_text("Wrong e-mail address or password.").wait_for()
    assert page.evaluate("document.activeElement.name") == "password", "focus back on password"
    page.keyboard.press("Control+A")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/my")

    # Changing the password: the current one is checked, then the new one works.
    new_password = PASSWORD + " 2"
    page.get_by_role("link", name="Account").click()
    page.get_by_role("heading", name="Your account").wait_for()
    assert email in page.locator(".account__facts").inner_text()
    # The account page has other forms asking for the current password (e-mail change).
    form = page.get_by_role("form", name="Change password")
    form.get_by_label("Current password").fill("wrong password")
    form.get_by_label("New password", exact=True).fill(new_password)
    form.get_by_label("Repeat the new password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("alert").get_by_text("The current password is wrong.").wait_for()
    assert page.url == f"{base}/account", "a wrong password does not end the session"
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password", exact=True).fill(new_password)
    form.get_by_label("Repeat the new password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed.", exact=False).wait_for()
    page.screenshot(path=screenshots / "account.png")
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").wait_for()
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(new_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/my")

    # When refreshing fails too, the session ends and the user is sent to log in.
    page.route(
        re.compile(r"/api/(gallery/videos\?owner=me|auth/refresh)"),
        lambda route: route.fulfill(
            status=401,
            content_type="application/json",
            body='{"error": {"code": "invalid_token", "message": "Token revoked."}}',
        ),
    )
    page.get_by_role("link", name="Browse").click()
    page.get_by_role("link", name="My videos").click()
    page.wait_for_url(re.compile(r"/login\?expired=1"))
    page.get_by_text("Your session has ended. Please log in again.").first.wait_for()


def test_a_completion_whose_answer_was_lost_is_not_a_failed_upload(
    platform: Any, context: Any, clip_factory: Any, clips_dir: Path
) -> None:
    base = platform.url
    token = uuid.uuid4().hex[:10]
    clip = clip_factory(clips_dir / f"Lost answer {token}.mp4", pad_bytes=7 * MiB)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_up(page, base, f"lost-{token}@example.com")

    completed: list[int] = []

    def lose_the_first_answer(route: Any) -> None:
        response = route.fetch()  # the gallery completes the upload...
        completed.append(response.status)
        if len(completed) == 1:
            route.abort("connectionreset")  # ...and the page never hears of it
        else:
            route.fulfill(response=response)

    page.route(re.compile(r"/api/upload/multipart/complete$"), lose_the_first_answer)
    page.locator(".dropzone input[type=file]").set_input_files(str(clip))
    paused = page.locator('li.upload[data-state="paused"]')
    paused.wait_for(timeout=60_000)
    # Resuming completes again: a 409 upload_already_completed, which the page takes for
    # what it is (the object is whole), and the upload is confirmed.
    paused.get_by_role("button", name="Resume").click()
    page.wait_for_selector('li.upload[data-state="done"]', timeout=60_000)
    assert completed[0] in (200, 204)
    assert completed[1:] == [409]
    page.locator("li.video-row", has_text=f"Lost answer {token}").wait_for()
    assert errors == []
