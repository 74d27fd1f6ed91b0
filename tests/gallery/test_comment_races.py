"""Comments under concurrent requests: counters stay exact, racing pins leave exactly
one pinned comment (the losers get 409 ``pin_conflict``, never a 500), and replies
racing their thread's deletion never lose a count; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gallery.comments.models import CommentStatus, GalleryComment
from videoforge.gallery.models import GalleryVideo
from videoforge.infra.runtime import Infra

from .conftest import SeedVideo, Users


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    return {"RATE_LIMITS": "comment=60:10000:10000"}


async def _counts(infra: Infra, video_id: uuid.UUID) -> tuple[int, int]:
    """The stored comments_count, and the visible comments counted row by row."""
    async with infra.sessions() as session:
        video = await session.get(GalleryVideo, video_id)
        assert video is not None
        counted = await session.execute(
            select(func.count())
            .select_from(GalleryComment)
            .where(
                GalleryComment.video_id == video_id,
                GalleryComment.status == CommentStatus.APPROVED,
                GalleryComment.deleted.is_(False),
            )
        )
        return video.comments_count, int(counted.scalar_one())


async def test_parallel_posts_replies_and_deletes_count_exactly(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/comments"
    posters = [users.headers(f"poster-{n}") for n in range(20)]
    made = await asyncio.gather(
        *(client.post(url, json={"text": f"c{n}"}, headers=h) for n, h in enumerate(posters))
    )
    assert [r.status_code for r in made] == [201] * 20
    assert await _counts(infra, video.id) == (20, 20)

    top = made[0].json()["id"]
    results = await asyncio.gather(
        # Replies to one thread while that thread and others are deleted.
        *(
            client.post(url, json={"text": f"r{n}", "parent_id": top}, headers=h)
            for n, h in enumerate(posters[10:])
        ),
        client.delete(f"/api/gallery/comments/{top}", headers=posters[0]),
        *(
            client.delete(f"/api/gallery/comments/{r.json()['id']}", headers=posters[n + 1])
            for n, r in enumerate(made[1:6])
        ),
        # The same comment deleted twice at once: one 204, one 404.
        client.delete(f"/api/gallery/comments/{made[6].json()['id']}", headers=posters[6]),
        client.delete(f"/api/gallery/comments/{made[6].json()['id']}", headers=users.owner),
    )
    statuses = [r.status_code for r in results]
    assert all(s in (201, 204, 404) for s in statuses), [r.text for r in results]
    assert sorted(statuses[-2:]) == [204, 404]
    stored, counted = await _counts(infra, video.id)
    assert stored == counted
    async with infra.sessions() as session:
        thread = await session.get(GalleryComment, uuid.UUID(top))
        replies = await session.execute(
            select(func.count())
            .select_from(GalleryComment)
            .where(GalleryComment.parent_id == uuid.UUID(top))
        )
    if thread is None:
        # The thread went before any reply reached it: every reply was refused.
        assert statuses[:10].count(201) == 0
    else:
        # Every reply answered 201 still exists, under a "comment deleted" thread.
        assert thread.deleted
        assert int(replies.scalar_one()) == statuses[:10].count(201) == thread.replies_count


async def test_racing_pins_leave_one_pinned(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/comments"
    ids = []
    for n in range(6):
        r = await client.post(url, json={"text": f"c{n}"}, headers=users.other)
        ids.append(r.json()["id"])
    results = await asyncio.gather(
        *(client.post(f"/api/gallery/comments/{i}/pin", headers=users.owner) for i in ids)
    )
    statuses = [r.status_code for r in results]
    assert set(statuses) <= {200, 409}, [r.text for r in results]
    assert 200 in statuses
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "pin_conflict"
    listed = (await client.get(url)).json()["items"]
    assert sum(c["pinned"] for c in listed) == 1
    assert listed[0]["pinned"]


async def test_commenting_and_rating_while_the_video_is_deleted(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    """Comments, replies and ratings racing the video's deletion: each either lands
    (and goes with the video) or is a 404; nothing is a 500."""
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}/comments"
    first = await client.post(url, json={"text": "first"}, headers=users.other)
    parent = first.json()["id"]
    people = [users.headers(f"racer-{n}") for n in range(12)]
    results = await asyncio.gather(
        *(client.post(url, json={"text": "c"}, headers=h) for h in people[:4]),
        *(
            client.post(url, json={"text": "r", "parent_id": parent}, headers=h)
            for h in people[4:8]
        ),
        *(
            client.put(f"/api/gallery/videos/{video.id}/rating", json={"rating": "like"}, headers=h)
            for h in people[8:]
        ),
        client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner),
    )
    assert all(r.status_code in (200, 201, 204, 404) for r in results), [
        (r.status_code, r.text) for r in results
    ]
    assert results[-1].status_code == 204
    assert (await client.get(url)).status_code == 404
