"""The gallery reads ``RATE_LIMITS`` as the gateway does, all four fields
(``action=window:per_ip[:per_user[:per_user_ip]]``): here upload URLs, which only the
gallery counts, limited per user from one address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from videoforge.gallery.app import create_app
from videoforge.gallery.limits import DEFAULTS, UPLOAD_URL, Rule, rule_for
from videoforge.infra.runtime import Infra
from videoforge.settings import Settings

from .conftest import Users, make_settings

BODY = {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    # No limit per address or per user: two upload URLs per user from one address.
    return {"RATE_LIMITS": "upload_url=3600:-:-:2"}


def test_every_field_of_a_rule_is_read(tmp_path: Path) -> None:
    def settings(spec: str | None) -> Settings:
        extra = {} if spec is None else {"RATE_LIMITS": spec}
        return make_settings("sqlite+aiosqlite:///unused.db", tmp_path, **extra)

    assert rule_for(settings(None), UPLOAD_URL) == DEFAULTS[UPLOAD_URL]
    assert rule_for(settings("upload_url=60:-:-:2"), UPLOAD_URL) == Rule(60, None, None, 2)
    assert rule_for(settings("upload_url=60:9:5:3"), UPLOAD_URL) == Rule(60, 9, 5, 3)
    assert rule_for(settings("off"), UPLOAD_URL) is None


async def test_upload_urls_are_limited_per_user_and_address(
    client: httpx.AsyncClient, settings: Settings, infra: Infra, users: Users
) -> None:
    async def ask(c: httpx.AsyncClient, headers: dict[str, str]) -> int:
        return (await c.post("/api/upload/url", json=BODY, headers=headers)).status_code

    assert [await ask(client, users.owner) for _ in range(3)] == [201, 201, 429]
    # Another user at the same address has an allowance of their own.
    assert await ask(client, users.other) == 201
    # The same user from another address too: the pair is what is counted.
    elsewhere = httpx.ASGITransport(app=create_app(settings, infra), client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
        assert await ask(other, users.owner) == 201
