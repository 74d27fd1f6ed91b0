"""Posting comments and reports is rate-limited per user and per address (``comment``
and ``report`` in ``RATE_LIMITS``): 429 ``rate_limited`` with ``Retry-After``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from videoforge.gallery.limits import COMMENT, DEFAULTS, REPORT, Rule, rule_for

from .conftest import SeedVideo, Users, make_settings


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    # Two comments per user and three per address a minute; two reports per user.
    return {"RATE_LIMITS": "comment=60:3:2,report=60:-:2"}


async def test_comments_are_limited_per_user_and_per_address(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/comments"

    async def post(headers: dict[str, str]) -> httpx.Response:
        return await client.post(url, json={"text": "hello"}, headers=headers)

    assert [(await post(users.other)).status_code for _ in range(2)] == [201, 201]
    limited = await post(users.other)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # Another user from the same address has an allowance of their own, until the
    # address's (3, counting the refused one) is spent.
    assert (await post(users.owner)).status_code == 429
    listed = (await client.get(url)).json()
    assert len(listed["items"]) == 2


async def test_reports_are_limited_per_user(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    videos = [await seed_video(users.owner_id) for _ in range(3)]
    statuses = [
        (
            await client.post(
                f"/api/gallery/videos/{v.id}/reports", json={"reason": "spam"}, headers=users.other
            )
        ).status_code
        for v in videos
    ]
    assert statuses == [201, 201, 429]


def test_rules_come_from_rate_limits(tmp_path: Any) -> None:
    def settings(spec: str | None) -> Any:
        extra = {} if spec is None else {"RATE_LIMITS": spec}
        return make_settings("sqlite+aiosqlite:///unused.db", tmp_path, **extra)

    assert rule_for(settings(None), COMMENT) == DEFAULTS[COMMENT]
    assert rule_for(settings(None), REPORT) == DEFAULTS[REPORT]
    assert rule_for(settings("comment=30:5:4"), COMMENT) == Rule(30, 5, 4)
    assert rule_for(settings("off"), COMMENT) is None
