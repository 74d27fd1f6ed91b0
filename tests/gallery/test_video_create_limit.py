"""Placeholder videos (``POST /api/gallery/videos``) are rate-limited per user like the
other creating actions: ``video_create`` in ``RATE_LIMITS``, 429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from videoforge.gallery.limits import DEFAULTS, VIDEO_CREATE, Rule, rule_for
from videoforge.infra.runtime import Infra
from videoforge.settings import Settings

from .conftest import Users, make_settings


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    return {"RATE_LIMITS": "video_create=3600:-:2"}


def _body(n: int) -> dict[str, str]:
    return {"title": f"Import {n}", "source_url": f"https://example.com/{n}.mp4"}


async def test_video_creation_is_limited_per_user(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    for n in range(2):
        r = await client.post("/api/gallery/videos", json=_body(n), headers=users.owner)
        assert r.status_code == 201, r.text
    r = await client.post("/api/gallery/videos", json=_body(2), headers=users.owner)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    listed = await client.get("/api/gallery/videos", params={"owner": "me"}, headers=users.owner)
    assert len(listed.json()["items"]) == 2

    # Another user has their own allowance.
    r = await client.post("/api/gallery/videos", json=_body(3), headers=users.other)
    assert r.status_code == 201, r.text


def test_the_rule_comes_from_rate_limits(tmp_path: Any) -> None:
    def settings(spec: str | None) -> Settings:
        extra = {} if spec is None else {"RATE_LIMITS": spec}
        return make_settings("sqlite+aiosqlite:///unused.db", tmp_path, **extra)

    assert rule_for(settings(None), VIDEO_CREATE) == DEFAULTS[VIDEO_CREATE]
    assert rule_for(settings("login=60:5"), VIDEO_CREATE) == DEFAULTS[VIDEO_CREATE]
    assert rule_for(settings("video_create=60:10:3"), VIDEO_CREATE) == Rule(60, 10, 3)
    assert rule_for(settings("off"), VIDEO_CREATE) is None
