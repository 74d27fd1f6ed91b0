"""Rate limits: 429 ``rate_limited`` with Retry-After, per IP and per user, counted in
the in-process cache and in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from videoforge.gateway.deps import GatewayOptions
from videoforge.gateway.ratelimit import Action, RateLimiter, RateLimits, Rule
from videoforge.infra.cache.memory import MemoryCache
from videoforge.infra.errors import TooManyRequests
from videoforge.infra.forwarded import client_block
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


async def test_gallery_actions_are_forwarded_uncounted(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    """Upload URLs and views are the gallery's to count (gallery/limits.py), once on
    every path: the gateway's proxy forwards them all, whatever its own rules say."""
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
    for _ in range(4):
        assert (await gw.client.post("/api/upload/url", json={}, headers=auth)).status_code == 200
    assert gw.gallery.hits["upload_url"] == 4
    video_path = "/api/gallery/videos/8d1c4a8e-6f0a-4d1b-9a51-0b6a2d3f4e5f/views"
    for _ in range(5):
        assert (await gw.client.post(video_path)).status_code == 200
    assert gw.gallery.hits["views"] == 5


# ------------------------------------------------- lock-out must not be a weapon
@asynccontextmanager
async def from_address(gw: Gateway, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from another loopback address (Linux routes all of
    127/8 to lo), so the gateway sees a different peer — no forwarding header involved."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=gw.url, transport=transport, timeout=30) as client:
        yield client


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_a_stranger_cannot_lock_the_owner_out(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    # The built-in rules: ten tries per account from one address.
    gw = await make_gateway(
        make_settings(tmp_path, sqlite_url),
        options=GatewayOptions(password_hasher=CHEAP_HASHER, rate_limits=RateLimits()),
        infra_hook=cache_hook,
        with_gallery=False,
    )
    await gw.signup("owner@example.com")
    async with from_address(gw, "127.0.0.2") as stranger, from_address(gw, "127.0.0.3") as owner:
        for _ in range(10):
            assert (await _login(stranger, "owner@example.com", "guess 123")).status_code == 401
        _assert_limited(await _login(stranger, "owner@example.com", "guess 123"), 300)
        # The stranger's address is done guessing, even with the right password ...
        _assert_limited(await _login(stranger, "Owner@example.com", "correct horse 1"), 300)
        # ... but the owner, from their own network, logs in.
        ok = await _login(owner, "owner@example.com", "correct horse 1")
        assert ok.status_code == 200, ok.text
        assert ok.json()["access_token"]


async def test_the_account_cap_bounds_guessing_from_many_addresses(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    gw = await _gateway(
        make_gateway,
        tmp_path,
        sqlite_url,
        cache_hook,
        login=Rule(window=120, per_ip=100, per_user=4, per_user_ip=2),
    )
    await gw.signup("target@example.com")
    for address in ("127.0.0.2", "127.0.0.3"):
        async with from_address(gw, address) as client:
            for _ in range(2):
                wrong = await _login(client, "target@example.com", "guess 123")
                assert wrong.status_code == 401
    async with from_address(gw, "127.0.0.4") as third:
        _assert_limited(await _login(third, "target@example.com", "guess 123"), 120)
        # Another account is not affected by this one's cap.
        other = await _login(third, "someone@example.com", "guess 123")
        assert other.status_code == 401


async def test_refused_tries_do_not_use_up_the_account_cap(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, cache_hook: Any
) -> None:
    gw = await _gateway(
        make_gateway,
        tmp_path,
        sqlite_url,
        cache_hook,
        login=Rule(window=120, per_ip=100, per_user=5, per_user_ip=2),
    )
    await gw.signup("target@example.com")
    async with from_address(gw, "127.0.0.2") as stranger:
        codes = [
            (await _login(stranger, "target@example.com", "guess 123")).status_code
            for _ in range(12)
        ]
    assert codes == [401, 401] + [429] * 10
    # Only the two tries that were let through count towards the account's cap of 5.
    async with from_address(gw, "127.0.0.3") as owner:
        ok = await _login(owner, "target@example.com", "correct horse 1")
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("address", "block"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("unknown", "unknown"),
    ],
)
def test_addresses_are_counted_per_ipv4_address_or_ipv6_64(address: str, block: str) -> None:
    assert client_block(address) == block


async def test_one_ipv6_host_cannot_rotate_addresses_within_its_64() -> None:
    limiter = RateLimiter(
        MemoryCache(),
        RateLimits().with_rules(login=Rule(window=60, per_ip=100, per_user=100, per_user_ip=2)),
    )
    await limiter.check(Action.LOGIN, ip="2001:db8:0:1::1", user="owner@example.com")
    await limiter.check(Action.LOGIN, ip="2001:db8:0:1::2", user="owner@example.com")
    with pytest.raises(TooManyRequests):
        await limiter.check(Action.LOGIN, ip="2001:db8:0:1::3", user="owner@example.com")
    # Another subscriber's /64 is another address.
    await limiter.check(Action.LOGIN, ip="2001:db8:0:2::1", user="owner@example.com")
