"""Account journeys in a real Chromium against ``videoforge serve`` (no SMTP configured,
so mail lands as .eml files in the data directory): forgot password -> the mailed link
-> a new password -> log in; changing the display name on /account; deleting the
account, after which its video and its stored original are gone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import email.policy
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.browser.api_user import PASSWORD, grant_admin
from tests.browser.pages import log_in

from videoforge.infra.storage.local.store import LocalStorage

pytestmark = pytest.mark.browser

NEW_PASSWORD = "purple tractor seventy rain"


def _api(platform: Any, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{platform.url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def _signup(platform: Any, prefix: str) -> tuple[str, dict[str, Any]]:
    address = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    answer = _api(platform, "POST", "/api/auth/signup", {"email": address, "password": PASSWORD})
    return address, answer


def _mail_to(data_dir: Path, address: str, timeout: float = 20) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted((data_dir / "mail").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if isinstance(message, EmailMessage) and message["To"] == address:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no mail to {address} in {data_dir / 'mail'}")


@pytest.fixture
def page(browser: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15_000)
    yield ctx.new_page()
    ctx.close()


def test_forgot_password_mail_reset_and_log_in(platform: Any, page: Any, screenshots: Path) -> None:
    address, _ = _signup(platform, "forgot")
    page.goto(f"{platform.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url(f"{platform.url}/forgot")
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Send me a link").click()
    page.get_by_text("If an account uses this address").wait_for()

    # The operator was told at start where mail goes.
    assert f"written to {(platform.data_dir / 'mail').resolve()}" in platform.log_path.read_text()
    body = _mail_to(platform.data_dir, address).get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"(http://\S+/reset\?token=\S+)", str(body.get_content()))
    assert match, body.get_content()
    page.goto(match.group(1))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.screenshot(path=str(screenshots / "account-reset.png"))
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(f"{platform.url}/login?reset=1")
    page.get_by_text("Your password is changed").wait_for()

    log_in(page, platform.url, address, password=NEW_PASSWORD)
    page.get_by_role("button", name="Log out").wait_for()
    # The link worked once.
    page.goto(match.group(1))
    page.get_by_label("New password", exact=True).fill("another fine pass 99")
    page.get_by_label("Repeat the new password").fill("another fine pass 99")
    page.get_by_role("button", name="Set the new password").click()
    page.get_by_text("This link was used already").wait_for()


def test_display_name_change_on_the_account_page(
    platform: Any, page: Any, screenshots: Path
) -> None:
    address, _ = _signup(platform, "rename")
    log_in(page, platform.url, address)
    page.get_by_role("button", name="Log out").wait_for()
    page.goto(f"{platform.url}/account")
    page.get_by_role("textbox", name="Display name").fill("Ada Lovelace")
    page.get_by_role("button", name="Save name").click()
    page.get_by_text("Display name saved.").wait_for()
    facts = page.locator("[data-field=display-name]")
    assert facts.text_content() == "Ada Lovelace"
    page.locator("#account-name").filter(has_text="Ada Lovelace").wait_for()
    page.screenshot(path=str(screenshots / "account-settings.png"))
    # It is the account's now: a fresh load shows it.
    page.reload()
    page.locator("[data-field=display-name]").filter(has_text="Ada Lovelace").wait_for()
    # The page renders from the session's copy first, then from fresh figures.
    page.locator("[data-field=storage]").filter(has_text=re.compile(r" of |no limit")).wait_for()


def _head(store: LocalStorage, key: str) -> Any:
    # Playwright's sync API holds this thread's event loop: run the coroutine elsewhere.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, store.head(key)).result()


def _upload(platform: Any, token: str, clip: bytes) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=platform.url, timeout=30) as client:
        ticket = client.post(
            "/api/upload/url",
            json={"filename": "c.mp4", "content_type": "video/mp4", "size": len(clip)},
            headers=auth,
        ).json()
        single = ticket["single"]
        sent = client.post(
            single["url"], data=single["fields"], files={"file": ("c.mp4", clip, "video/mp4")}
        )
        assert sent.status_code in (200, 201, 204), sent.text
        confirmed = client.post(
            "/api/upload/confirm", json={"key": ticket["key"], "title": "Goodbye"}, headers=auth
        )
        assert confirmed.status_code == 201, confirmed.text
        video: dict[str, Any] = confirmed.json()
        return video


def test_deleting_the_account_removes_it_and_its_videos(
    platform: Any, page: Any, clip_factory: Any, tmp_path: Path
) -> None:
    address, session = _signup(platform, "leave")
    clip = clip_factory(tmp_path / "c.mp4", seconds=1, size="64x48").read_bytes()
    video = _upload(platform, session["access_token"], clip)
    # Read-only, on the platform's own object directory (the signing key is not needed).
    store = LocalStorage(platform.data_dir / "objects", signing_key=b"-" * 16)
    assert _head(store, video["s3_key"]) is not None

    log_in(page, platform.url, address)
    page.get_by_role("button", name="Log out").wait_for()
    page.goto(f"{platform.url}/account")
    danger = page.locator("section.account--danger")
    danger.get_by_label("Password").fill(PASSWORD)
    danger.get_by_role("button", name="Delete my account").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete everything").click()
    page.wait_for_url(f"{platform.url}/")
    page.get_by_text("Your account was deleted.").wait_for()
    page.get_by_role("link", name="Log in").first.wait_for()

    assert _head(store, video["s3_key"]) is None
    with pytest.raises(urllib.error.HTTPError) as refused:
        _api(platform, "POST", "/api/auth/login", {"email": address, "password": PASSWORD})
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as gone:
        _api(platform, "GET", f"/api/gallery/videos/{video['id']}")
    assert gone.value.code == 404


def test_an_admin_sets_a_users_quota_and_their_next_upload_is_refused(
    platform: Any, page: Any, clip_factory: Any, tmp_path: Path, screenshots: Path
) -> None:
    _, session = _signup(platform, "filled")
    clip = clip_factory(tmp_path / "c.mp4", seconds=1, size="64x48").read_bytes()
    _upload(platform, session["access_token"], clip)
    user_id = session["user"]["id"]
    admin, _ = _signup(platform, "storage-admin")
    grant_admin(platform, admin)

    log_in(page, platform.url, admin)
    page.get_by_role("button", name="Log out").wait_for()
    page.goto(f"{platform.url}/account")
    page.get_by_role("link", name="Storage per user").click()
    page.wait_for_url(f"{platform.url}/admin/storage")
    row = page.locator(f"tr[data-user='{user_id}']")
    row.wait_for()
    row.get_by_role("spinbutton").fill("0")
    row.get_by_role("button", name="Set").click()
    page.get_by_text("Quota set to").wait_for()
    page.screenshot(path=str(screenshots / "storage-admin.png"))

    with pytest.raises(urllib.error.HTTPError) as refused:
        _api(
            platform,
            "POST",
            "/api/upload/url",
            {"filename": "more.mp4", "content_type": "video/mp4", "size": 1000},
            token=session["access_token"],
        )
    assert refused.value.code == 413
    error = json.loads(refused.value.read())["error"]
    assert error["code"] == "quota_exceeded"
    assert "left" in error["message"]
