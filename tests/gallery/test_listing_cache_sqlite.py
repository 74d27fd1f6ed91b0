"""SQLite keeps no listing: other processes write to its file unannounced."""

from __future__ import annotations

import httpx
import pytest

from videoforge.gallery.app import create_app
from videoforge.infra.runtime import Infra
from videoforge.settings import Settings

from .conftest import SeedVideo


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_sqlite_lists_without_a_cache(
    settings: Settings, infra: Infra, seed_video: SeedVideo
) -> None:
    app = create_app(settings, infra)
    async with app.router.lifespan_context(app):
        assert getattr(app.state, "listing_cache", None) is None
        await seed_video("someone", title="first")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert [
                v["title"] for v in (await client.get("/api/gallery/videos")).json()["items"]
            ] == ["first"]
            await seed_video("someone", title="second")  # written past the app
            titles = {v["title"] for v in (await client.get("/api/gallery/videos")).json()["items"]}
    assert titles == {"first", "second"}
