"""What the browser tests do the same way on any page: the viewport, watching a page
for what must never happen on it, logging in through the form, axe's findings, and a
view post the service refuses once as unavailable."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.browser.api_user import PASSWORD

DESKTOP = {"width": 1280, "height": 800}
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def watch(page: Any, problems: list[str], *, dialogs: bool = True) -> list[str]:
    """Record on ``problems`` every uncaught script error of ``page`` and, with
    ``dialogs``, every dialog it opens (dismissed, so the page goes on): an alert from
    user-supplied text would be a stored XSS. Returns ``problems``."""
    page.on("pageerror", lambda error: problems.append(f"error: {error}"))
    if dialogs:

        def on_dialog(dialog: Any) -> None:
            problems.append(f"dialog: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
    return problems


def log_in(
    page: Any, base: str, email: str, *, password: str = PASSWORD, then: str | None = None
) -> None:
    """Log in through the form; with ``then``, through ``/login?next=`` and on to it."""
    page.goto(f"{base}/login" if then is None else f"{base}/login?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    if then is None:
        page.wait_for_function("() => location.pathname !== '/login'")
    else:
        page.wait_for_url(f"{base}{then}")


def sign_up(page: Any, base: str, email: str) -> None:
    """Create an account through the form (with :data:`PASSWORD`); it lands on /my."""
    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/my")


def axe(page: Any, name: str) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    found = []
    for violation in results["violations"]:
        if violation["impact"] in {"serious", "critical"}:
            targets = [", ".join(map(str, n["target"])) for n in violation["nodes"][:5]]
            found.append(f"{name}: {violation['id']} ({violation['impact']}) at {targets}")
    return found


#: The gallery's answer while its cache is down (503 with Retry-After, nothing counted).
UNAVAILABLE_BODY = (
    '{"error": {"code": "unavailable", "message": "The cache is unavailable; try again '
    'shortly.", "details": {"dependency": "cache"}}}'
)


def views_unavailable_once(page: Any, video_id: str, *, retry_after: int = 1) -> list[float]:
    """Answer ``page``'s first view post of ``video_id`` (its frames' too) with the
    outage's 503 and ``Retry-After``, and let the next ones through; returns the
    (monotonic) times of the posts, filled in as they are made."""
    posts: list[float] = []

    def handle(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        posts.append(time.monotonic())
        if len(posts) > 1:
            route.continue_()
            return
        route.fulfill(
            status=503,
            headers={"Retry-After": str(retry_after), "Content-Type": "application/json"},
            body=UNAVAILABLE_BODY,
        )

    page.route(re.compile(rf"/api/gallery/videos/{re.escape(video_id)}/views$"), handle)
    return posts
