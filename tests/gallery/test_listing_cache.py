"""Anonymous listings kept in memory (gallery.listing_cache): an answer from memory is
the answer a fresh build would give, byte for byte, and it is dropped the moment
anything it shows changes, whoever changes it, or when the clock publishes a video."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from videoforge.gallery import service
from videoforge.gallery.app import create_app
from videoforge.gallery.listing_cache import APPLICATION_NAME, ListingCache
from videoforge.gallery.models import Visibility
from videoforge.infra.db import create_engine, utcnow
from videoforge.infra.runtime import Infra
from videoforge.settings import Settings

from .conftest import SeedVideo, Users

pytestmark = pytest.mark.postgres

LIST = "/api/gallery/videos"


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def _count(result: str) -> float:
    value = REGISTRY.get_sample_value("videoforge_listing_cache_total", {"result": result})
    return value or 0.0


class Served:
    """An app with its lifespan running (so its cache listens) and one without."""

    def __init__(self, cached: httpx.AsyncClient, plain: httpx.AsyncClient, cache: ListingCache):
        self.cached, self.plain, self.cache = cached, plain, cache


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def served(settings: Settings, infra: Infra) -> AsyncIterator[Served]:
    app = create_app(settings, infra)
    plain_app = create_app(settings, infra)  # no lifespan entered: never caches
    async with app.router.lifespan_context(app):
        cache: ListingCache = app.state.listing_cache

        async def listening() -> bool:
            return cache.listening

        await _until(listening)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=plain_app), base_url="http://t"
            ) as p,
        ):
            yield Served(c, p, cache)


async def test_a_kept_answer_is_the_fresh_answer(served: Served, seed_video: SeedVideo) -> None:
    for n in range(5):
        await seed_video(
            f"user-{n}",
            title=f"holiday video {n}",
            thumbnail_key=f"videos/{n}/thumbnail.jpg",
            preview_key=f"videos/{n}/preview.webp",
        )
    first = (await served.plain.get(LIST, params={"per_page": 2})).json()
    cases: list[dict[str, str | int]] = [
        {},
        {"per_page": 2},
        {"per_page": 2, "cursor": first["next_cursor"]},
        {"q": "holiday"},
        {"sort": "oldest", "page": 2, "per_page": 2},
    ]
    for params in cases:
        hits = _count("hit")
        built = await served.cached.get(LIST, params=params)
        kept = await served.cached.get(LIST, params=params)
        fresh = await served.plain.get(LIST, params=params)
        assert built.status_code == kept.status_code == fresh.status_code == 200
        assert _count("hit") == hits + 1, params  # the second came from memory
        assert kept.content == built.content == fresh.content, params
        assert kept.headers["content-type"] == fresh.headers["content-type"]
        assert kept.json()["items"][0]["thumbnail_url"]


async def test_a_change_through_the_api_shows_at_once(
    served: Served, seed_video: SeedVideo, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However late the notification of the change comes back to this process:
    monkeypatch.setattr(ListingCache, "_notified", lambda *_: None)
    video = await seed_video(users.owner_id, title="soon private")
    assert [v["id"] for v in (await served.cached.get(LIST)).json()["items"]] == [str(video.id)]
    assert (await served.cached.get(LIST)).json()["items"]  # kept
    r = await served.cached.put(
        f"{LIST}/{video.id}",
        json={"visibility": "private"},
        headers={**users.owner, "If-Match": f'"{video.version}"'},
    )
    assert r.status_code == 200, r.text
    # No wait: the writer's own process dropped what it kept before answering.
    assert (await served.cached.get(LIST)).json()["items"] == []


async def test_a_change_made_elsewhere_shows_within_a_moment(
    served: Served, seed_video: SeedVideo, postgres_url: str
) -> None:
    video = await seed_video("someone", title="old title")
    await served.cached.get(LIST)
    hits = _count("hit")
    assert (await served.cached.get(LIST)).json()["items"][0]["title"] == "old title"
    assert _count("hit") == hits + 1
    # Another process (an operator's SQL here) changes the row: the trigger tells us.
    other = create_engine(postgres_url, pool_size=1)
    try:
        async with other.begin() as conn:
            await conn.execute(
                text("UPDATE gallery_videos SET title = 'new title' WHERE id = :id"),
                {"id": video.id.hex},
            )
    finally:
        await other.dispose()

    async def renamed() -> bool:
        items = (await served.cached.get(LIST)).json()["items"]
        return bool(items[0]["title"] == "new title")

    # Unannounced, the kept answer would stand until its stills' window ends (minutes).
    await _until(renamed, timeout=5)


async def test_a_scheduled_video_comes_out_on_time_without_a_write(
    served: Served, seed_video: SeedVideo
) -> None:
    await seed_video("someone", title="out already")
    soon = utcnow() + timedelta(seconds=3)
    await seed_video("someone", title="scheduled", publish_at=soon, publish_pending=True)
    titles = [v["title"] for v in (await served.cached.get(LIST)).json()["items"]]
    assert titles == ["out already"]
    assert [v["title"] for v in (await served.cached.get(LIST)).json()["items"]] == titles
    await asyncio.sleep(max(0.0, (soon - utcnow()).total_seconds()) + 0.05)
    now_out = {v["title"] for v in (await served.cached.get(LIST)).json()["items"]}
    assert now_out == {"out already", "scheduled"}


async def test_signed_in_callers_are_never_answered_from_memory(
    served: Served, seed_video: SeedVideo, users: Users
) -> None:
    await seed_video(users.owner_id, title="public")
    await seed_video(users.owner_id, title="mine only", visibility=Visibility.PRIVATE)
    await served.cached.get(LIST)
    kept = {k: _count(k) for k in ("hit", "miss", "bypass")}
    mine = (await served.cached.get(LIST, headers=users.owner)).json()["items"]
    assert {v["title"] for v in mine} == {"public", "mine only"}
    assert {k: _count(k) for k in kept} == kept  # not even asked
    anonymous = (await served.cached.get(LIST)).json()["items"]
    assert [v["title"] for v in anonymous] == ["public"]


async def test_nothing_is_kept_while_nobody_listens(
    served: Served, seed_video: SeedVideo, postgres_url: str
) -> None:
    video = await seed_video("someone", title="before")
    other = create_engine(postgres_url, pool_size=1)
    try:
        async with other.begin() as conn:
            cut = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
            assert cut.scalars().all() == [True]

        async def deaf() -> bool:
            return not served.cache.listening

        await _until(deaf, timeout=5)
        bypassed = _count("bypass")
        assert (await served.cached.get(LIST)).json()["items"][0]["title"] == "before"
        async with other.begin() as conn:
            # Were anything kept now, nothing would tell this process to drop it.
            await conn.execute(
                text("UPDATE gallery_videos SET title = 'after' WHERE id = :id"),
                {"id": video.id.hex},
            )
        assert (await served.cached.get(LIST)).json()["items"][0]["title"] == "after"
        assert _count("bypass") == bypassed + 2

        async def back() -> bool:
            return served.cache.listening

        await _until(back, timeout=10)  # it reconnects by itself
    finally:
        await other.dispose()
    await served.cached.get(LIST)
    hits = _count("hit")
    await served.cached.get(LIST)
    assert _count("hit") == hits + 1


def test_an_answer_is_kept_no_longer_than_its_stills_urls() -> None:
    ttl = service.LISTING_URL_TTL
    now = time.time()
    until = service.still_urls_change()
    assert now < until <= now + service.STILL_URL_WINDOW + 1
    assert service._expiry(ttl, until - 0.01) == service._expiry(ttl, now)
    assert service._expiry(ttl, until + 0.01) != service._expiry(ttl, now)


def test_the_least_recently_used_answers_go_first_within_both_bounds() -> None:
    cache = ListingCache(entries=3, max_bytes=100)
    cache.listening = True
    later = time.time() + 60
    for key in "abc":
        cache.put(key, cache.generation, b"x" * 20, until=later)
    assert cache.get("a") == b"x" * 20  # a is now the most recently used
    cache.put("d", cache.generation, b"y" * 20, until=later)  # four entries: b goes
    assert cache.get("b") is None
    assert [cache.get(k) is not None for k in "acd"] == [True, True, True]
    cache.put("e", cache.generation, b"z" * 50, until=later)  # 110 bytes: a goes
    assert cache.size == 90
    assert cache.get("a") is None
    assert [cache.get(k) is not None for k in "cde"] == [True, True, True]
    cache.put("f", cache.generation, b"!" * 101, until=later)  # larger than everything
    assert cache.get("f") is None
    assert len(cache) == 3
    cache.put("g", cache.generation - 1, b"old", until=later)  # built before a change
    assert cache.get("g") is None
    cache.put("h", cache.generation, b"late", until=time.time() - 1)  # already stale
    assert cache.get("h") is None
    cache.invalidate()
    assert len(cache) == 0
    assert cache.size == 0


async def test_a_listen_that_hears_nothing_keeps_nothing(
    settings: Settings, infra: Infra, seed_video: SeedVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a pooler in transaction mode a LISTEN is accepted and hears nothing: the
    probe sent through the pool never arrives, so the cache never starts."""
    from videoforge.gallery import listing_cache

    monkeypatch.setattr(listing_cache, "CHECK_SECONDS", 0.3)
    monkeypatch.setattr(ListingCache, "_notified", lambda *_: None)  # deaf
    await seed_video("someone", title="listed")
    app = create_app(settings, infra)
    async with app.router.lifespan_context(app):
        cache: ListingCache = app.state.listing_cache
        await asyncio.sleep(1.5)  # more than a probe and a reconnect
        assert not cache.listening
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            bypassed = _count("bypass")
            for _ in range(2):
                assert (await client.get(LIST)).json()["items"][0]["title"] == "listed"
            assert _count("bypass") == bypassed + 2
        assert len(cache) == 0


async def test_requests_that_come_during_a_build_share_it(
    served: Served, seed_video: SeedVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from videoforge.gallery import api

    await seed_video("someone", title="popular")
    built = 0
    real = api._listing

    async def slow_listing(*args: Any) -> Any:
        nonlocal built
        built += 1
        await asyncio.sleep(0.2)  # a count at a million rows, say
        return await real(*args)

    monkeypatch.setattr(api, "_listing", slow_listing)
    answers = await asyncio.gather(*(served.cached.get(LIST) for _ in range(6)))
    assert built == 1
    assert {a.content for a in answers} == {answers[0].content}
    assert answers[0].json()["items"][0]["title"] == "popular"

    # A failed build: the requests that joined it build for themselves.
    served.cache.invalidate()
    failures = 1

    async def failing_once(*args: Any) -> Any:
        nonlocal failures
        await asyncio.sleep(0.2)
        if failures:
            failures -= 1
            raise RuntimeError("the database went away")
        return await real(*args)

    monkeypatch.setattr(api, "_listing", failing_once)
    results = await asyncio.gather(*(served.cached.get(LIST) for _ in range(3)))
    # The one whose build failed answers the JSON 500; the two that had joined it do not.
    assert sorted(r.status_code for r in results) == [200, 200, 500]
