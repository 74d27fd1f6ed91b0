"""View counting: dedup, rate limit, 50 concurrent viewers -> exactly +50, concurrent
flushers, no loss when a flush fails or at shutdown, analytics, Redis buffering."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import httpx
import pytest

from videoforge.gallery import views
from videoforge.gallery.app import create_app
from videoforge.gallery.models import GalleryVideo
from videoforge.infra.cache.memory import MemoryCache
from videoforge.infra.cache.redis import RedisCache
from videoforge.infra.db import create_engine, session_factory, utcnow
from videoforge.infra.runtime import Infra
from videoforge.settings import Settings

from .conftest import SeedVideo, Users


async def views_of(infra: Infra, video: GalleryVideo) -> int:
    async with infra.sessions() as session:
        fresh = await session.get(GalleryVideo, video.id)
    assert fresh is not None
    return fresh.views


async def test_fifty_concurrent_viewers_count_exactly_fifty(
    client: httpx.AsyncClient, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, views=7)
    headers = [users.headers(f"viewer-{i}") for i in range(50)]
    responses = await asyncio.gather(
        *(client.post(f"/api/gallery/videos/{video.id}/views", headers=h) for h in headers)
    )
    assert [r.status_code for r in responses] == [202] * 50
    assert all(r.json()["counted"] for r in responses)
    assert await views.flush_views(infra) == 50
    assert await views_of(infra, video) == 57

    r = await client.get(f"/api/gallery/videos/{video.id}/analytics", headers=users.owner)
    assert r.status_code == 200
    body = r.json()
    assert body["total_views"] == 57
    assert body["days"] == [{"day": utcnow().date().isoformat(), "views": 50}]


async def test_one_viewer_counts_once_per_window(
    client: httpx.AsyncClient, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/views"
    counted = [(await client.post(url, headers=users.other)).json()["counted"] for _ in range(3)]
    assert counted == [True, False, False]
    # Anonymous viewers are told apart by address + user agent.
    a = await client.post(url, headers={"User-Agent": "player-a"})
    a_again = await client.post(url, headers={"User-Agent": "player-a"})
    b = await client.post(url, headers={"User-Agent": "player-b"})
    assert [a.json()["counted"], a_again.json()["counted"], b.json()["counted"]] == [
        True,
        False,
        True,
    ]
    await views.flush_views(infra)
    assert await views_of(infra, video) == 3


async def test_view_rate_limit(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/views"
    statuses = [
        (await client.post(url, headers={"User-Agent": f"ua-{i}"})).status_code
        for i in range(views.VIEW_RATE_LIMIT + 1)
    ]
    assert statuses[:-1] == [202] * views.VIEW_RATE_LIMIT
    assert statuses[-1] == 429
    r = await client.post(url)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"


async def test_concurrent_flushers_of_two_instances(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    # Two gallery instances: the same database, each with its own buffer.
    one = dataclasses.replace(infra, cache=MemoryCache())
    two = dataclasses.replace(infra, cache=MemoryCache())
    for i in range(25):
        await views.record_view(one.cache, video.id, f"one-{i}")
        await views.record_view(two.cache, video.id, f"two-{i}")
    flushed = await asyncio.gather(views.flush_views(one), views.flush_views(two))
    assert sorted(flushed) == [25, 25]
    assert await views_of(infra, video) == 50


async def test_a_failed_flush_loses_nothing(
    infra: Infra, users: Users, seed_video: SeedVideo, tmp_path: object
) -> None:
    video = await seed_video(users.owner_id)
    for i in range(5):
        await views.record_view(infra.cache, video.id, f"v{i}")
    # A database that is not there: the flush fails and the counts go back.
    dead = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing", pool_size=1)
    broken = dataclasses.replace(infra, engine=dead, sessions=session_factory(dead))
    with pytest.raises(ConnectionRefusedError):
        await views.flush_views(broken)
    await dead.dispose()
    assert await views.flush_views(infra) == 5
    assert await views_of(infra, video) == 5


async def test_views_of_deleted_videos_are_dropped(
    client: httpx.AsyncClient, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    kept = await seed_video(users.owner_id)
    gone = await seed_video(users.owner_id)
    await views.record_view(infra.cache, kept.id, "x")
    await views.record_view(infra.cache, gone.id, "x")
    assert (
        await client.delete(f"/api/gallery/videos/{gone.id}", headers=users.owner)
    ).status_code == 204
    assert await views.flush_views(infra) == 1
    assert await views_of(infra, kept) == 1


async def test_shutdown_flushes_buffered_views(
    settings: Settings, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    # The app builds its own backends (in-process cache) and runs its loops; counts made
    # just before shutdown must reach the database.
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            statuses = [
                (
                    await c.post(
                        f"/api/gallery/videos/{video.id}/views", headers={"User-Agent": f"u{i}"}
                    )
                ).status_code
                for i in range(12)
            ]
        assert statuses == [202] * 12
    assert await views_of(infra, video) == 12


async def test_view_flusher_loop_flushes_and_stops(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    stop = asyncio.Event()
    task = asyncio.create_task(views.run_view_flusher(infra, stop, interval=0.1))
    await views.record_view(infra.cache, video.id, "early")
    for _ in range(50):
        if await views_of(infra, video) == 1:
            break
        await asyncio.sleep(0.05)
    assert await views_of(infra, video) == 1
    await views.record_view(infra.cache, video.id, "late")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert await views_of(infra, video) == 2


async def test_redis_buffer_counts_concurrent_viewers(
    infra: Infra, users: Users, seed_video: SeedVideo, redis_url: str
) -> None:
    video = await seed_video(users.owner_id)
    cache = RedisCache(redis_url, prefix=f"test-gallery-{uuid.uuid4().hex}:")
    shared = dataclasses.replace(infra, cache=cache)
    try:
        results = await asyncio.gather(
            *(views.record_view(cache, video.id, f"viewer-{i % 40}") for i in range(60))
        )
        assert results.count(True) == 40
        assert await views.flush_views(shared) == 40
        assert await views.flush_views(shared) == 0
        assert await views_of(infra, video) == 40
    finally:
        await cache.close()
