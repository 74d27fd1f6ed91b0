"""The gallery's cards and sorts after viewers rate and comment, in a real Chromium: a
card shows its video's comment count (none when it has none or comments are turned
off), and "Most liked" orders an uploader's page by likes, kept in the URL across a
reload."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser
from tests.browser.pages import watch

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def rated(
    platform: Any, clip_factory: Callable[..., Path], clips_dir: Path
) -> Iterator[dict[str, Any]]:
    """Two public videos of one uploader: the older one liked twice, the newer one
    commented on (and liked by nobody)."""
    clip = clip_factory(clips_dir / "cards.mp4", seconds=2)
    token = uuid.uuid4().hex[:8]
    owner = ApiUser(platform.url, f"cards-owner-{token}@example.com")
    fans = [ApiUser(platform.url, f"cards-fan{n}-{token}@example.com") for n in range(2)]
    try:
        loved = owner.upload_ready(clip, title="Loved one")
        quiet = owner.upload_ready(clip, title="Quiet one")
        for fan in fans:
            r = fan.http.put(f"/api/gallery/videos/{loved}/rating", json={"rating": "like"})
            assert r.status_code == 200, r.text
        for text in ("First!", "Nice colours"):
            r = fans[0].http.post(f"/api/gallery/videos/{quiet}/comments", json={"text": text})
            assert r.status_code == 201, r.text
        yield {"owner": owner, "loved": loved, "quiet": quiet}
    finally:
        for user in (owner, *fans):
            user.close()


def _cards(page: Any) -> list[tuple[str, str]]:
    """(title, meta line) of each card, in order."""
    cards = page.locator("ul.grid > li.card")
    return [
        (
            card.locator(".card__title").inner_text().strip(),
            card.locator(".card__meta").inner_text(),
        )
        for card in cards.all()
    ]


def test_cards_show_comment_counts_and_most_liked_sorts(
    platform: Any, context: Any, rated: dict[str, Any]
) -> None:
    problems: list[str] = []
    page = context.new_page()
    watch(page, problems)
    owner_page = f"{platform.url}/?owner={rated['owner'].id}"
    page.goto(owner_page)
    page.locator("ul.grid > li.card").nth(1).wait_for()
    cards = _cards(page)
    assert [title for title, _ in cards] == ["Quiet one", "Loved one"]  # newest first
    assert "2 comments" in cards[0][1]
    assert "comment" not in cards[1][1]
    quiet = page.locator(f'li.card[data-video-id="{rated["quiet"]}"] .card__comments')
    assert quiet.inner_text() == "2 comments"

    page.get_by_label("Sort by").select_option("likes")
    page.wait_for_url("**sort=likes**")
    page.wait_for_function(
        "() => document.querySelector('ul.grid > li.card .card__title')"
        "?.textContent.trim() === 'Loved one'"
    )
    assert [title for title, _ in _cards(page)] == ["Loved one", "Quiet one"]
    page.reload()
    page.locator("ul.grid > li.card").nth(1).wait_for()
    assert page.get_by_label("Sort by").input_value() == "likes"
    assert [title for title, _ in _cards(page)] == ["Loved one", "Quiet one"]

    # Comments turned off: no count on the card or the watch page.
    off = rated["owner"].http.put(
        f"/api/gallery/videos/{rated['quiet']}", json={"comment_policy": "off"}
    )
    assert off.status_code == 200, off.text
    page.reload()
    page.locator("ul.grid > li.card").nth(1).wait_for()
    assert page.locator(".card__comments").count() == 0
    page.goto(f"{platform.url}/watch/{rated['quiet']}")
    page.locator(".comments__status", has_text="Comments are turned off.").wait_for()
    assert page.locator(".watch__comments-count").is_hidden()
    assert problems == [], problems
