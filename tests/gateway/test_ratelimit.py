"""Rate limits: 429 ``rate_limited`` with Retry-After, per IP and per user, counted in
the in-process cache and in Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from videoforge.gateway.deps import GatewayOptions
from videoforge.gateway.ratelimit import RateLimits, Rule
from videoforge.infra.cache.memory import MemoryCache
from videoforge.infra.runtime import Infra

from .conftest import CHEAP_HASHER, Gateway, GatewayFactory, make_settings


@pytest.fixture(params=["memory", "redis"])
def cache_hook(request: pytest.FixtureRequest, unique: str) -> Callable[[Infra], None]:
    if request.param == "memory":

        def memory(infra: Infra) -> None:
            assert isinstance(infra.cache, MemoryCache)

        return memory
    from videoforge.infra.cache.redis import RedisCache

    url = request.getfixturevalue("redis_url")

    def redis(infra: Infra) -> None:
        # A private key prefix: the Redis server is shared with other tests and runs.
        infra.cache = RedisCache(url, prefix=f"vf-test-{unique}:")

    return redis


async def _gateway(
    make_gateway: GatewayFactory,
    tmp_path: Path,
    sqlite_url: str,
    hook: Callable[[Infra], None],
    **rules: Rule,
) -> Gateway:
    limits = RateLimits().with_rules(**rules)
    return await make_gateway(
        make_settings(tmp_path, sqlite_url),
        options=GatewayOptions(password_hasher=CHEAP_HASHER, rate_limits=limits),
        infra_hook=hook,
        proxy=True,
    )


def _assert_limited(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= window


async def test_login_per_ip(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    gw = await _gateway(
        make_gateway, tmp_path, sqlite_url, cache_hook, login=Rule(window=60, per_ip=3)
    )
    for i in range(3):
        response = await gw.client.post(
            "/api/auth/login", json={"email": f"x{i}@example.com", "password": "whatever1"}
        )
        assert response.status_code == 401
    _assert_limited(
        await gw.client.post(
            "/api/auth/login", json={"email": "y@example.com", "password": "whatever1"}
        ),
        60,
    )


async def test_login_per_account(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    gw = await _gateway(
        make_gateway,
        tmp_path,
        sqlite_url,
        cache_hook,
        login=Rule(window=120, per_ip=100, per_user=2),
    )
    await gw.signup("target@example.com")
    for _ in range(2):
        wrong = await gw.client.post(
            "/api/auth/login", json={"email": "Target@example.com", "password": "guess 123"}
        )
        assert wrong.status_code == 401
    # Even the right password waits now: guessing this account is throttled.
    _assert_limited(
        await gw.client.post(
            "/api/auth/login", json={"email": "target@example.com", "password": "correct horse 1"}
        ),
        120,
    )
    other = await gw.client.post(
        "/api/auth/login", json={"email": "someone@example.com", "password": "guess 123"}
    )
    assert other.status_code == 401


async def test_signup_jobs_and_imports(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    gw = await _gateway(
        make_gateway,
        tmp_path,
        sqlite_url,
        cache_hook,
        signup=Rule(window=3600, per_ip=2),
        job_create=Rule(window=3600, per_ip=100, per_user=3),
        **{"import": Rule(window=3600, per_ip=100, per_user=1)},
    )
    user = await gw.signup("one@example.com")
    await gw.signup("two@example.com")
    _assert_limited(
        await gw.client.post(
            "/api/auth/signup", json={"email": "three@example.com", "password": "long enough 1"}
        ),
        3600,
    )
    auth = gw.bearer(user["access_token"])
    first_import = await gw.client.post(
        "/api/jobs", json={"source_url": "https://example.com/a.mp4"}, headers=auth
    )
    assert first_import.status_code == 201
    _assert_limited(
        await gw.client.post(
            "/api/jobs", json={"source_url": "https://example.com/b.mp4"}, headers=auth
        ),
        3600,
    )
    video = gw.gallery.add_video(user["user"]["id"])
    ok = await gw.client.post("/api/jobs", json={"video_id": str(video.id)}, headers=auth)
    assert ok.status_code == 201  # job creations so far: 3 (two imports tried, one video)
    another = gw.gallery.add_video(user["user"]["id"])
    _assert_limited(
        await gw.client.post("/api/jobs", json={"video_id": str(another.id)}, headers=auth),
        3600,
    )


async def test_proxied_upload_urls_and_views(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    gw = await _gateway(
        make_gateway,
        tmp_path,
        sqlite_url,
        cache_hook,
        upload_url=Rule(window=600, per_ip=100, per_user=2),
        view=Rule(window=60, per_ip=3),
    )
    user = await gw.signup("up@example.com")
    auth = gw.bearer(user["access_token"])
    for _ in range(2):
        assert (await gw.client.post("/api/upload/url", json={}, headers=auth)).status_code == 200
    _assert_limited(await gw.client.post("/api/upload/url", json={}, headers=auth), 600)
    assert gw.gallery.hits["upload_url"] == 2  # the limited request never reached it

    video_path = "/api/gallery/videos/8d1c4a8e-6f0a-4d1b-9a51-0b6a2d3f4e5f/views"
    for _ in range(3):
        assert (await gw.client.post(video_path)).status_code == 200
    _assert_limited(await gw.client.post(video_path), 60)
    assert gw.gallery.hits["views"] == 3
    # Reads are not limited.
    assert (await gw.client.get("/api/gallery/echo")).status_code == 200
