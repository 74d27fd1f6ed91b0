"""The post-login ``next=`` destination stays on this site, in a real Chromium.

The log-in page resolves ``next`` as the browser would and keeps it only when its origin
is the page's own: backslashes, protocol-relative and absolute URLs, ``javascript:`` and
encoded tricks all end on this site, while a real path (with its query) is honoured.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from tests.browser.api_user import PASSWORD
from tests.browser.pages import watch

pytestmark = pytest.mark.browser

HOSTILE = [
    "/\\evil.example",
    "//evil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "/%5Cevil.example",
    "\\\\evil.example/x",
    " //evil.example",
    # Dot segments resolve to a path starting "//": on this origin, but a protocol-relative
    # URL to anything that takes it as a link (history.replaceState refuses it).
    "/.//evil.example",
    "/a/..//evil.example",
]


@pytest.fixture(scope="module")
def account(platform: Any) -> str:
    """One account, made through the API (the sign-up page is not under test here)."""
    email = f"next-{uuid.uuid4().hex[:10]}@example.com"
    request = urllib.request.Request(
        f"{platform.url}/api/auth/signup",
        data=json.dumps({"email": email, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    return email


@pytest.fixture
def context(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh browser profile; any request to evil.example is refused and recorded."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15_000)
    escaped: list[str] = []

    def refuse(route: Any) -> None:
        escaped.append(route.request.url)
        route.abort()

    ctx.route(lambda url: urlsplit(url).hostname == "evil.example", refuse)
    yield ctx, escaped
    ctx.close()


def log_in_with_next(ctx: Any, base: str, email: str, next_value: str) -> tuple[Any, list[str]]:
    page = ctx.new_page()
    problems = watch(page, [])
    page.goto(f"{base}/login?next={quote(next_value, safe='')}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # Done when the page has left /login, or shows why it could not.
    page.wait_for_function(
        """() => location.pathname !== '/login'
               || !document.querySelector('.form-error')?.hidden"""
    )
    return page, problems


@pytest.mark.parametrize("next_value", HOSTILE)
def test_a_foreign_next_lands_on_this_site(
    platform: Any, account: str, context: tuple[Any, list[str]], next_value: str
) -> None:
    ctx, escaped = context
    page, problems = log_in_with_next(ctx, platform.url, account, next_value)
    here = urlsplit(page.url)
    assert f"{here.scheme}://{here.netloc}" == platform.url, page.url
    assert here.path != "/login", page.locator(".form-error").text_content()
    if next_value != "/%5Cevil.example":  # a real (if odd) path here: it may stay
        assert here.path == "/", page.url
    # Signed in, on this site, and nothing tried to reach the other one.
    page.get_by_role("button", name="Log out").wait_for()
    assert escaped == []
    assert problems == []


def test_a_path_on_this_site_is_honoured(
    platform: Any, account: str, context: tuple[Any, list[str]]
) -> None:
    ctx, escaped = context
    page, problems = log_in_with_next(ctx, platform.url, account, "/watch/abc?x=1")
    assert page.url == f"{platform.url}/watch/abc?x=1"
    # Already signed in, /login forwards at once, with the same check.
    page.goto(f"{platform.url}/login?next={quote('//evil.example', safe='')}")
    page.wait_for_url(f"{platform.url}/")
    page.goto(f"{platform.url}/login?next={quote('/my?page=1', safe='')}")
    page.wait_for_url(f"{platform.url}/my?page=1")
    assert escaped == []
    assert problems == []
