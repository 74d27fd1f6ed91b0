"""Listings sign stills once per window: every caller gets the same, working URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from videoforge.gallery import service
from videoforge.infra.runtime import Infra

from .conftest import SeedVideo, Users


async def test_a_thumbnail_url_is_the_same_for_everyone_within_a_window_and_it_works(
    client: httpx.AsyncClient, infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    key = "outputs/lean/thumbnail.jpg"
    await infra.storage.put_bytes(key, b"\xff\xd8\xff still", content_type="image/jpeg")
    video = await seed_video(users.owner_id, title="Lean", thumbnail_key=key)
    anonymous = (await client.get("/api/gallery/videos")).json()["items"]
    signed_in = (await client.get("/api/gallery/videos", headers=users.other)).json()["items"]
    (first,) = [v["thumbnail_url"] for v in anonymous if v["id"] == str(video.id)]
    (second,) = [v["thumbnail_url"] for v in signed_in if v["id"] == str(video.id)]
    assert first == second
    expires = int(parse_qs(urlsplit(first).query)["exp"][0])
    assert expires % service.STILL_URL_WINDOW == 0
    fetched = await client.get(first)
    assert fetched.status_code == 200
    assert fetched.content == b"\xff\xd8\xff still"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_listing_items_read_from_plain_rows_say_what_the_detail_says(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="Same", description="words")
    (item,) = [
        v
        for v in (await client.get("/api/gallery/videos", headers=users.owner)).json()["items"]
        if v["id"] == str(video.id)
    ]
    detail = (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()
    assert item == detail
