"""Basic API behaviour on SQLite and PostgreSQL: read, create for import, edit, delete."""

from __future__ import annotations

import httpx

from .conftest import SeedVideo, Users


async def test_get_video_and_etag(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="Hello", s3_key="originals/x/y/source")
    r = await client.get(f"/api/gallery/videos/{video.id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Hello"
    assert body["user_id"] == users.owner_id
    assert body["s3_key"] is None  # anonymous never sees the key
    assert r.headers["etag"] == '"1"'
    r = await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert r.json()["s3_key"] == "originals/x/y/source"
