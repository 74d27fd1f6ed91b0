"""Ratings: one per user, changeable, ``likes``/``dislikes``/``my_rating`` on the video,
exact counts under concurrent requests, and the ``likes`` sort; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gallery.models import GalleryVideo, Visibility
from videoforge.gallery.ratings.models import GalleryRating, RatingValue
from videoforge.infra.runtime import Infra

from .conftest import SeedVideo, Users


def _rating(video_id: uuid.UUID) -> str:
    return f"/api/gallery/videos/{video_id}/rating"


async def _rate(
    client: httpx.AsyncClient, video_id: uuid.UUID, headers: dict[str, str], value: str
) -> dict[str, Any]:
    r = await client.put(_rating(video_id), json={"rating": value}, headers=headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_one_changeable_rating_per_user(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    assert await _rate(client, video.id, users.other, "like") == {
        "video_id": str(video.id),
        "likes": 1,
        "dislikes": 0,
        "my_rating": "like",
    }
    assert (await _rate(client, video.id, users.other, "like"))["likes"] == 1  # the same again
    changed = await _rate(client, video.id, users.other, "dislike")
    assert (changed["likes"], changed["dislikes"], changed["my_rating"]) == (0, 1, "dislike")
    await _rate(client, video.id, users.owner, "like")

    url = f"/api/gallery/videos/{video.id}"
    mine = (await client.get(url, headers=users.other)).json()
    assert (mine["likes"], mine["dislikes"], mine["my_rating"]) == (1, 1, "dislike")
    assert (await client.get(url, headers=users.owner)).json()["my_rating"] == "like"
    assert (await client.get(url)).json()["my_rating"] is None  # anonymous
    assert (await client.get(url, headers=users.admin)).json()["my_rating"] is None  # not theirs
    listed = (await client.get("/api/gallery/videos", headers=users.other)).json()["items"]
    assert [(v["my_rating"], v["likes"]) for v in listed] == [("dislike", 1)]
    assert [v["my_rating"] for v in (await client.get("/api/gallery/videos")).json()["items"]] == [
        None
    ]

    cleared = await _rate(client, video.id, users.other, "none")
    assert (cleared["likes"], cleared["dislikes"], cleared["my_rating"]) == (1, 0, None)
    assert (await _rate(client, video.id, users.other, "none"))["dislikes"] == 0
    assert (await client.get(url, headers=users.other)).json()["my_rating"] is None


async def test_bad_input_and_access(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    bodies: list[object] = [
        {"rating": "love"},
        {"rating": None},
        {},
        {"rating": "like", "x": 1},
        [],
    ]
    for body in bodies:
        r = await client.put(_rating(video.id), json=body, headers=users.other)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    r = await client.put(_rating(video.id), json={"rating": "like"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "auth_required"
    private = await seed_video(users.owner_id, visibility=Visibility.PRIVATE)
    r = await client.put(_rating(private.id), json={"rating": "like"}, headers=users.other)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "video_not_found"
    r = await client.put(_rating(uuid.uuid4()), json={"rating": "like"}, headers=users.other)
    assert r.status_code == 404


async def _stored_counts(infra: Infra, video_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(likes, dislikes) on the video and counted from the rating rows."""
    async with infra.sessions() as session:
        video = await session.get(GalleryVideo, video_id)
        assert video is not None
        rows = dict(
            (
                await session.execute(
                    select(GalleryRating.value, func.count())
                    .where(GalleryRating.video_id == video_id)
                    .group_by(GalleryRating.value)
                )
            ).all()
        )
    return (
        video.likes,
        video.dislikes,
        int(rows.get(RatingValue.LIKE, 0)),
        int(rows.get(RatingValue.DISLIKE, 0)),
    )


async def test_counts_stay_exact_under_concurrency(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    """20 users at once, and one user flipping between like, dislike and none in
    parallel: the counters equal the rating rows, exactly."""
    video = await seed_video(users.owner_id)
    raters = [users.headers(f"rater-{n}") for n in range(20)]
    results = await asyncio.gather(
        *(
            client.put(
                _rating(video.id), json={"rating": "like" if n % 4 else "dislike"}, headers=h
            )
            for n, h in enumerate(raters)
        )
    )
    assert [r.status_code for r in results] == [200] * 20
    assert await _stored_counts(infra, video.id) == (15, 5, 15, 5)

    flipper = users.headers("flipper")
    choices = ["like", "dislike", "none", "like", "like", "dislike", "none", "dislike"] * 3
    results = await asyncio.gather(
        *(client.put(_rating(video.id), json={"rating": c}, headers=flipper) for c in choices),
        *(
            client.put(_rating(video.id), json={"rating": "none" if n % 2 else "like"}, headers=h)
            for n, h in enumerate(raters)
        ),
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    likes, dislikes, like_rows, dislike_rows = await _stored_counts(infra, video.id)
    assert (likes, dislikes) == (like_rows, dislike_rows)
    # The 20 raters ended at 10 likes and no dislike; the flipper at one of its choices.
    assert (likes - 10, dislikes) in {(0, 0), (1, 0), (0, 1)}


async def test_most_liked_sort(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    videos = [await seed_video(users.owner_id, title=f"v{n}") for n in range(4)]
    for n, video in enumerate(videos):
        for k in range(n if n != 2 else 5):
            await _rate(client, video.id, users.headers(f"fan-{k}"), "like")
    expected = ["v2", "v3", "v1", "v0"]
    page = (await client.get("/api/gallery/videos", params={"sort": "likes"})).json()
    assert [v["title"] for v in page["items"]] == expected
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"sort": "likes", "per_page": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/gallery/videos", params=params)).json()
        seen += [v["title"] for v in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    for value in (float("inf"), 10**30, "many"):
        raw = json.dumps({"s": "likes", "v": value, "i": videos[0].id.hex})
        cursor = base64.urlsafe_b64encode(raw.encode()).decode()
        r = await client.get("/api/gallery/videos", params={"sort": "likes", "cursor": cursor})
        assert r.status_code == 400, (value, r.text)
        assert r.json()["error"]["code"] == "invalid_cursor"
    r = await client.get("/api/gallery/videos", params={"sort": "likes", "cursor": "bogus"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.postgres
async def test_likes_sort_reads_an_index(postgres_url: str) -> None:
    """The most-liked listing has an index of its own (visibility, status, likes, id)."""
    from sqlalchemy import text

    from videoforge.infra.db import create_engine

    engine = create_engine(postgres_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_gallery_videos_likes'")
            )
            assert "(visibility, status, likes, id)" in rows.scalar_one()
    finally:
        await engine.dispose()
