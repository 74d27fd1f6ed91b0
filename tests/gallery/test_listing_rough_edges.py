"""Listing and playback rough edges: the title sort ignores case (pages and cursors
agree), an impossible duration range is 422, a failed video's stream says it failed."""

from __future__ import annotations

from typing import Any

import httpx

from videoforge.gallery.models import VideoStatus

from .conftest import SeedVideo, Users

TITLES = ["banana", "Apple", "cherry", "apple pie", "Zebra", "BANANA split", "aardvark"]


async def test_title_sort_is_case_insensitive_across_pages_and_cursors(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    for title in TITLES:
        await seed_video(users.owner_id, title=title)
    expected = sorted(TITLES, key=str.lower)
    assert expected[0] == "aardvark"
    assert expected[-1] == "Zebra"

    by_page: list[str] = []
    for page in (1, 2, 3):
        r = await client.get(
            "/api/gallery/videos", params={"sort": "title", "per_page": 3, "page": page}
        )
        assert r.status_code == 200
        by_page += [v["title"] for v in r.json()["items"]]
    assert by_page == expected

    by_cursor: list[str] = []
    params: dict[str, Any] = {"sort": "title", "per_page": 3}
    while True:
        body = (await client.get("/api/gallery/videos", params=params)).json()
        by_cursor += [v["title"] for v in body["items"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert by_cursor == expected


async def test_min_duration_above_max_duration_is_422(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/gallery/videos", params={"min_duration": 60, "max_duration": 10})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_duration_range"
    # An equal bound is a valid (narrow) range.
    r = await client.get("/api/gallery/videos", params={"min_duration": 10, "max_duration": 10})
    assert r.status_code == 200


async def test_stream_of_a_failed_video_says_it_failed(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(
        users.owner_id, status=VideoStatus.FAILED, failure_reason="The file is damaged."
    )
    r = await client.get(f"/api/gallery/stream/{video.id}", headers=users.owner)
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "video_failed"
    assert "failed" in error["message"]
