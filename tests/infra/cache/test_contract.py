"""The cache contract, over the in-process cache and a real Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from videoforge.infra.cache import MemoryCache, build_cache
from videoforge.infra.cache.base import Cache
from videoforge.infra.cache.redis import RedisCache
from videoforge.settings import Settings, load_settings


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        impl: Cache = MemoryCache()
    else:
        url = str(request.getfixturevalue("redis_url"))
        # A unique prefix: tests share the server with each other and other runs.
        impl = RedisCache(url, prefix=f"test:{uuid.uuid4().hex}:")
    yield impl
    await impl.close()


async def test_get_set_delete(cache: Cache) -> None:
    assert isinstance(cache, Cache)
    await cache.ping()
    assert await cache.get("k") is None
    await cache.set("k", "v")
    assert await cache.get("k") == "v"
    await cache.set("k", "w")
    assert await cache.get("k") == "w"
    await cache.delete("k")
    assert await cache.get("k") is None
    await cache.delete("k")  # deleting a missing key is fine


async def test_expiry(cache: Cache) -> None:
    await cache.set("short", "1", ttl=1)
    await cache.set("long", "2", ttl=30)
    await cache.set("forever", "3")
    assert await cache.get("short") == "1"
    await asyncio.sleep(1.2)
    assert await cache.get("short") is None
    assert await cache.get("long") == "2"
    assert await cache.get("forever") == "3"


async def test_set_if_absent(cache: Cache) -> None:
    assert await cache.set_if_absent("lock", "a", ttl=1) is True
    assert await cache.set_if_absent("lock", "b", ttl=1) is False
    assert await cache.get("lock") == "a"
    await asyncio.sleep(1.2)
    assert await cache.set_if_absent("lock", "c", ttl=5) is True  # expired: free again
    assert await cache.get("lock") == "c"


async def test_set_if_absent_has_one_winner_under_concurrency(cache: Cache) -> None:
    results = await asyncio.gather(*(cache.set_if_absent("once", str(i), ttl=5) for i in range(20)))
    assert results.count(True) == 1


async def test_incr_and_its_ttl(cache: Cache) -> None:
    assert await cache.incr("n") == 1
    assert await cache.incr("n", 5) == 6
    assert await cache.incr("n", -2) == 4
    assert await cache.get("n") == "4"

    assert await cache.incr("t", ttl=1) == 1
    assert await cache.incr("t", ttl=30) == 2  # the TTL is set when the key is created
    await asyncio.sleep(1.2)
    assert await cache.get("t") is None
    assert await cache.incr("t", ttl=30) == 1


async def test_concurrent_incr_loses_nothing(cache: Cache) -> None:
    await asyncio.gather(*(cache.incr("c", 2) for _ in range(100)))
    assert await cache.get("c") == "200"


async def test_fixed_window_rate_limit(cache: Cache) -> None:
    results = [await cache.hit("login:1.2.3.4", limit=3, window=1) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0, 0]
    assert [r.retry_after for r in results[:3]] == [0, 0, 0]
    assert all(r.retry_after == 1 for r in results[3:])  # whole seconds, at least 1

    other = await cache.hit("login:5.6.7.8", limit=3, window=1)
    assert other.allowed  # keys are counted separately
    assert other.remaining == 2

    await asyncio.sleep(1.15)  # the window ends: a new one starts
    fresh = await cache.hit("login:1.2.3.4", limit=3, window=1)
    assert fresh.allowed
    assert fresh.remaining == 2


async def test_rate_limit_retry_after_counts_down(cache: Cache) -> None:
    await cache.hit("k", limit=1, window=10)
    denied = await cache.hit("k", limit=1, window=10)
    assert not denied.allowed
    assert 9 <= denied.retry_after <= 10


async def test_concurrent_hits_are_all_counted(cache: Cache) -> None:
    results = await asyncio.gather(*(cache.hit("burst", limit=10, window=30) for _ in range(25)))
    assert sum(r.allowed for r in results) == 10
    assert sorted(r.remaining for r in results if r.allowed) == list(range(10))


async def test_hincr_and_hdrain(cache: Cache) -> None:
    assert await cache.hdrain("views") == {}
    await cache.hincr("views", "video-a")
    await cache.hincr("views", "video-a", 2)
    await cache.hincr("views", "video-b")
    assert await cache.hdrain("views") == {"video-a": 3, "video-b": 1}
    assert await cache.hdrain("views") == {}  # drained means cleared


async def test_hdrain_under_concurrent_increments_loses_nothing(cache: Cache) -> None:
    """Writers increment while a drainer repeatedly drains: the sum of all drains plus
    what is left equals everything that was added."""
    stop = asyncio.Event()
    drained: dict[str, int] = {}

    async def writer(field: str) -> None:
        for _ in range(200):
            await cache.hincr("buf", field)
            await asyncio.sleep(0)

    async def drainer() -> None:
        while not stop.is_set():
            for key, value in (await cache.hdrain("buf")).items():
                drained[key] = drained.get(key, 0) + value
            await asyncio.sleep(0)

    drain_task = asyncio.create_task(drainer())
    await asyncio.gather(*(writer(f"v{i}") for i in range(5)))
    stop.set()
    await drain_task
    for key, value in (await cache.hdrain("buf")).items():
        drained[key] = drained.get(key, 0) + value
    assert drained == {f"v{i}": 200 for i in range(5)}


async def test_build_cache_follows_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    memory = build_cache(load_settings())
    assert isinstance(memory, MemoryCache)

    monkeypatch.setenv("REDIS_URL", redis_url)
    prefix = f"vf-prefix-{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)
    redis = build_cache(load_settings())
    assert isinstance(redis, RedisCache)
    plain = RedisCache(redis_url)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await redis.set(key, "via settings", ttl=5)
        assert await redis.get(key) == "via settings"
        # Stored under the prefix: another deployment's key of the same name is apart.
        assert await plain.get(prefix + key) == "via settings"
        assert await plain.get(key) is None
        await redis.delete(key)
    finally:
        await redis.close()
        await plain.close()
