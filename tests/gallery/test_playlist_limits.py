"""Creating playlists is rate-limited per user and per address (``playlist`` in
``RATE_LIMITS``): 429 ``rate_limited`` with ``Retry-After``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from videoforge.gallery.limits import DEFAULTS, PLAYLIST, Rule, rule_for

from .conftest import Users, make_settings


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    return {"RATE_LIMITS": "playlist=3600:-:2"}


async def test_creating_playlists_is_limited_per_user(
    client: httpx.AsyncClient, users: Users
) -> None:
    async def create(headers: dict[str, str]) -> httpx.Response:
        return await client.post("/api/gallery/playlists", json={"title": "t"}, headers=headers)

    assert [(await create(users.owner)).status_code for _ in range(2)] == [201, 201]
    limited = await create(users.owner)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert (await create(users.other)).status_code == 201


def test_the_default_rule(tmp_path: Any) -> None:
    settings = make_settings("sqlite+aiosqlite:///:memory:", tmp_path)
    assert rule_for(settings, PLAYLIST) == DEFAULTS[PLAYLIST]
    custom = make_settings("sqlite+aiosqlite:///:memory:", tmp_path, RATE_LIMITS="playlist=60:5:3")
    assert rule_for(custom, PLAYLIST) == Rule(window=60, per_ip=5, per_user=3)
