"""View counting: dedup (per user, per address — never per User-Agent), rate limit, 50
concurrent viewers -> exactly +50, a durable log before `counted: true` (a Redis that
loses its data loses no count), group commit, concurrent flushers, no loss when a flush
fails or at shutdown, analytics."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import httpx
import pytest
from sqlalchemy import select

from videoforge.gallery import views
from videoforge.gallery.app import create_app
from videoforge.gallery.models import GalleryVideo, GalleryViewLog
from videoforge.infra.cache.memory import MemoryCache
from videoforge.infra.cache.redis import RedisCache
from videoforge.infra.db import create_engine, session_factory, utcnow
from videoforge.infra.forwarded import client_block
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
    # Anonymous viewers are told apart by address only: another User-Agent from the
    # same address is the same viewer.
    a = await client.post(url, headers={"User-Agent": "player-a"})
    a_again = await client.post(url, headers={"User-Agent": "player-a"})
    b = await client.post(url, headers={"User-Agent": "player-b"})
    assert [a.json()["counted"], a_again.json()["counted"], b.json()["counted"]] == [
        True,
        False,
        False,
    ]
    await views.flush_views(infra)
    assert await views_of(infra, video) == 2


@pytest.mark.parametrize("settings_extra", [{"RATE_LIMITS": "view=60:5"}])
async def test_view_rate_limit(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    """Counted by the gallery, per address, as RATE_LIMITS says (here 5 a minute)."""
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/views"
    statuses = [
        (await client.post(url, headers={"User-Agent": f"ua-{i}"})).status_code for i in range(6)
    ]
    assert statuses[:-1] == [202] * 5
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
        await views.record_view(one, video.id, f"one-{i}")
        await views.record_view(two, video.id, f"two-{i}")
    flushed = await asyncio.gather(views.flush_views(one), views.flush_views(two))
    # One log in the database: each view is moved by exactly one of the two.
    assert sum(flushed) == 50
    assert await views_of(infra, video) == 50


async def test_a_failed_flush_loses_nothing(
    infra: Infra, users: Users, seed_video: SeedVideo, tmp_path: object
) -> None:
    video = await seed_video(users.owner_id)
    for i in range(5):
        await views.record_view(infra, video.id, f"v{i}")
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
    await views.record_view(infra, kept.id, "x")
    await views.record_view(infra, gone.id, "x")
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
        statuses = []
        for i in range(12):  # twelve viewers: twelve addresses
            transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{i + 1}", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                r = await c.post(f"/api/gallery/videos/{video.id}/views")
                statuses.append(r.status_code)
        assert statuses == [202] * 12
    assert await views_of(infra, video) == 12


async def test_view_flusher_loop_flushes_and_stops(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    stop = asyncio.Event()
    task = asyncio.create_task(views.run_view_flusher(infra, stop, interval=0.1))
    await views.record_view(infra, video.id, "early")
    for _ in range(50):
        if await views_of(infra, video) == 1:
            break
        await asyncio.sleep(0.05)
    assert await views_of(infra, video) == 1
    await views.record_view(infra, video.id, "late")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert await views_of(infra, video) == 2


async def test_redis_dedup_counts_concurrent_viewers(
    infra: Infra, users: Users, seed_video: SeedVideo, redis_url: str
) -> None:
    video = await seed_video(users.owner_id)
    cache = RedisCache(redis_url, prefix=f"test-gallery-{uuid.uuid4().hex}:")
    shared = dataclasses.replace(infra, cache=cache)
    try:
        results = await asyncio.gather(
            *(views.record_view(shared, video.id, f"viewer-{i % 40}") for i in range(60))
        )
        assert results.count(True) == 40
        assert await views.flush_views(shared) == 40
        assert await views.flush_views(shared) == 0
        assert await views_of(infra, video) == 40
    finally:
        await cache.close()


async def _view_from(
    app_infra: Infra, settings: Settings, video_id: uuid.UUID, address: str, user_agent: str
) -> bool:
    transport = httpx.ASGITransport(app=create_app(settings, app_infra), client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post(
            f"/api/gallery/videos/{video_id}/views", headers={"User-Agent": user_agent}
        )
    assert r.status_code == 202, r.text
    counted: bool = r.json()["counted"]
    return counted


async def test_rotating_user_agents_or_ipv6_interface_ids_do_not_inflate_views(
    settings: Settings, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    same_v4 = [
        await _view_from(infra, settings, video.id, "192.0.2.10", f"ua-{i}") for i in range(5)
    ]
    assert same_v4 == [True, False, False, False, False]
    # The same host as IPv4-mapped IPv6: the same viewer.
    assert not await _view_from(infra, settings, video.id, "::ffff:192.0.2.10", "mapped")
    # Any address of one /64 is one viewer; another /64 is another.
    same_64 = [
        await _view_from(infra, settings, video.id, f"2001:db8:1:2::{i:x}", f"ua-{i}")
        for i in range(1, 5)
    ]
    assert same_64 == [True, False, False, False]
    assert await _view_from(infra, settings, video.id, "2001:db8:1:3::1", "ua")
    assert await views.flush_views(infra) == 3
    assert await views_of(infra, video) == 3


def test_client_subject() -> None:
    assert client_block("192.0.2.1") == "192.0.2.1"
    assert client_block("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_block("2001:db8::1") == "2001:db8::/64"
    assert client_block("2001:db8:0:0:ffff:ffff:ffff:ffff") == "2001:db8::/64"
    assert client_block("testclient") == "testclient"
    assert views.viewer_id(None, "2001:db8::1") == views.viewer_id(None, "2001:db8::2")
    assert views.viewer_id(None, "2001:db8::1") != views.viewer_id(None, "2001:db8:0:1::1")


async def test_concurrent_views_share_one_commit(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    log = views.ViewLog(infra.sessions)
    today = utcnow().date()
    # All hundred are waiting before the writer runs: one transaction, one row.
    await asyncio.gather(*(log.append(video.id, today) for _ in range(100)))
    async with infra.sessions() as session:
        rows = (await session.execute(select(GalleryViewLog.views))).scalars().all()
    assert list(rows) == [100]
    assert await views.flush_views(infra) == 100
    assert await views_of(infra, video) == 100


async def test_a_view_the_database_refused_is_not_marked_counted(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    dead = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing", pool_size=1)
    broken = dataclasses.replace(infra, engine=dead, sessions=session_factory(dead))
    try:
        with pytest.raises(ConnectionRefusedError):
            await views.record_view(broken, video.id, "viewer")
    finally:
        await dead.dispose()
    # The dedup mark went with the failure: the retry counts.
    assert await views.record_view(infra, video.id, "viewer")
    assert await views.flush_views(infra) == 1


async def test_counts_an_older_version_buffered_in_the_cache_are_kept(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    day = utcnow().date().isoformat()
    await infra.cache.hincr(views.PENDING_VIEWS, f"{video.id.hex}:{day}", 4)
    assert await views.flush_views(infra) == 4
    assert await views_of(infra, video) == 4
    assert await infra.cache.hdrain(views.PENDING_VIEWS) == {}
