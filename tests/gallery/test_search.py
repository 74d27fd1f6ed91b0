"""Listing, search and pagination correctness on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from videoforge.gallery import search
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gallery.schemas import VideoSort
from videoforge.gallery.search import ListParams, list_videos
from videoforge.infra.errors import BadRequest
from videoforge.infra.runtime import Infra

from .conftest import SeedVideo, Users, at

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


@pytest.fixture
async def catalogue(users: Users, seed_video: SeedVideo) -> list[GalleryVideo]:
    """23 ready public videos with ties in views and titles, plus noise that must never
    be listed to anonymous callers."""
    rng = random.Random(7)
    videos = []
    for i in range(23):
        videos.append(
            await seed_video(
                users.owner_id if i % 2 else users.other_id,
                title=WORDS[i % len(WORDS)] + ("x" if i % 3 == 0 else ""),
                description=f"clip number {i}",
                created_at=at(rng.randrange(0, 10_000) if i % 5 else 42),
                views=rng.choice([0, 5, 5, 10, 100]),
                duration=float(i),
            )
        )
    await seed_video(users.owner_id, title="alpha hidden", visibility=Visibility.PRIVATE)
    await seed_video(users.owner_id, title="alpha unlisted", visibility=Visibility.UNLISTED)
    await seed_video(users.owner_id, title="alpha processing", status=VideoStatus.PROCESSING)
    return videos


def _expected(videos: list[GalleryVideo], sort: str) -> list[str]:
    def key(v: GalleryVideo) -> Any:
        return {
            "newest": (v.created_at, v.id.hex),
            "oldest": (v.created_at, v.id.hex),
            "most_viewed": (v.views, v.id.hex),
            "title": (v.title, v.id.hex),
        }[sort]

    reverse = sort in ("newest", "most_viewed")
    return [str(v.id) for v in sorted(videos, key=key, reverse=reverse)]


@pytest.mark.parametrize("sort", ["newest", "oldest", "most_viewed", "title"])
async def test_pages_and_cursors_agree_with_the_order(
    client: httpx.AsyncClient, catalogue: list[GalleryVideo], sort: str
) -> None:
    expected = _expected(catalogue, sort)

    by_cursor: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"sort": sort, "per_page": 4}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/gallery/videos", params=params)).json()
        by_cursor += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert by_cursor == expected

    by_page: list[str] = []
    for page in range(1, 8):
        r = await client.get(
            "/api/gallery/videos", params={"sort": sort, "per_page": 4, "page": page}
        )
        body = r.json()
        assert body["total"] == 23
        assert body["page"] == page
        by_page += [item["id"] for item in body["items"]]
    assert by_page == expected


async def test_cursor_survives_inserts_before_it(
    client: httpx.AsyncClient, catalogue: list[GalleryVideo], users: Users, seed_video: SeedVideo
) -> None:
    first = (await client.get("/api/gallery/videos", params={"per_page": 5})).json()
    await seed_video(users.owner_id, title="newcomer", created_at=at(99_999))
    second = (
        await client.get(
            "/api/gallery/videos", params={"per_page": 5, "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["items"][0]["id"] == _expected(catalogue, "newest")[5]


async def test_bad_cursors(client: httpx.AsyncClient, catalogue: list[GalleryVideo]) -> None:
    body = (await client.get("/api/gallery/videos", params={"per_page": 2})).json()
    r = await client.get(
        "/api/gallery/videos", params={"sort": "title", "cursor": body["next_cursor"]}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"
    r = await client.get("/api/gallery/videos", params={"cursor": "garbage!!"})
    assert r.status_code == 400
    r = await client.get("/api/gallery/videos", params={"cursor": body["next_cursor"], "page": 2})
    assert r.status_code == 400


async def test_filters(
    client: httpx.AsyncClient, catalogue: list[GalleryVideo], users: Users
) -> None:
    async def ids(params: dict[str, Any], headers: dict[str, str] | None = None) -> set[str]:
        r = await client.get(
            "/api/gallery/videos", params=params | {"per_page": 100}, headers=headers
        )
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    assert await ids({"min_duration": 5, "max_duration": 9}) == {
        str(v.id) for v in catalogue if v.duration is not None and 5 <= v.duration <= 9
    }
    assert await ids({"owner": users.other_id}) == {
        str(v.id) for v in catalogue if v.user_id == users.other_id
    }
    # Anonymous: only ready public ones, whatever the filter asks for.
    assert await ids({"visibility": "private"}) == set()
    assert await ids({"status": "processing"}) == set()
    # The owner sees their own non-listed videos through the same filters.
    own_private = await ids({"visibility": "private"}, users.owner)
    assert len(own_private) == 1
    own_processing = await ids({"status": "processing", "owner": "me"}, users.owner)
    assert len(own_processing) == 1
    assert len(await ids({}, users.owner)) == 26
    assert len(await ids({}, users.other)) == 23
    assert len(await ids({}, users.admin)) == 26


async def test_full_text_search(
    client: httpx.AsyncClient, catalogue: list[GalleryVideo], users: Users
) -> None:
    async def titles(q: str, headers: dict[str, str] | None = None) -> list[str]:
        r = await client.get(
            "/api/gallery/videos", params={"q": q, "per_page": 100}, headers=headers
        )
        assert r.status_code == 200, r.text
        return sorted(item["title"] for item in r.json()["items"])

    alphas = sorted(v.title for v in catalogue if v.title.startswith("alpha"))
    assert await titles("alpha") == alphas
    assert await titles("ALPH") == alphas  # prefix, case-insensitive
    assert await titles("number 7") == ["hotel"]  # description words, all must match
    assert await titles("number 7 bravo") == []
    assert await titles("zzz") == []
    # Query syntax is not interpreted: operators and quotes are just punctuation.
    assert await titles('"alpha" OR NEAR(* title:') == []
    assert await titles("'; DROP TABLE gallery_videos; --") == []
    assert sorted(await titles("alpha", users.owner)) == sorted(
        [*alphas, "alpha hidden", "alpha unlisted", "alpha processing"]
    )


async def test_search_follows_edits_and_deletes(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="original words")
    r = await client.put(
        f"/api/gallery/videos/{video.id}",
        json={"title": "renamed kangaroo"},
        headers=users.owner,
    )
    assert r.status_code == 200
    found = (await client.get("/api/gallery/videos", params={"q": "kangaroo"})).json()
    assert [item["id"] for item in found["items"]] == [str(video.id)]
    gone = (await client.get("/api/gallery/videos", params={"q": "original"})).json()
    assert gone["items"] == []
    r = await client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert r.status_code == 204
    found = (await client.get("/api/gallery/videos", params={"q": "kangaroo"})).json()
    assert found["items"] == []


async def test_per_page_bounds(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/gallery/videos", params={"per_page": 0})).status_code == 422
    assert (await client.get("/api/gallery/videos", params={"per_page": 101})).status_code == 422
    empty = (await client.get("/api/gallery/videos", params={"page": 50})).json()
    assert empty["items"] == []
    assert empty["next_cursor"] is None


@pytest.mark.parametrize("sort", ["newest", "most_viewed", "title"])
async def test_signed_in_pages_merge_public_and_own_videos(
    client: httpx.AsyncClient,
    infra: Infra,
    users: Users,
    seed_video: SeedVideo,
    catalogue: list[GalleryVideo],
    sort: str,
) -> None:
    # More of the owner's non-public videos, interleaved in time with the public ones.
    for i in range(6):
        await seed_video(
            users.owner_id,
            title=WORDS[i],
            visibility=Visibility.PRIVATE,
            created_at=at(i * 1500),
            views=i,
        )
    async with infra.sessions() as session:
        everything = list((await session.execute(select(GalleryVideo))).scalars())
    visible = [
        v
        for v in everything
        if v.user_id == users.owner_id
        or (v.visibility is Visibility.PUBLIC and v.status is VideoStatus.READY)
    ]
    expected = _expected(visible, sort)
    assert len(expected) == 23 + 3 + 6

    by_cursor: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"sort": sort, "per_page": 5}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/gallery/videos", params=params, headers=users.owner)).json()
        by_cursor += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert by_cursor == expected

    by_page: list[str] = []
    for page in range(1, 8):
        body = (
            await client.get(
                "/api/gallery/videos",
                params={"sort": sort, "per_page": 5, "page": page},
                headers=users.owner,
            )
        ).json()
        assert body["total"] == len(expected)
        by_page += [item["id"] for item in body["items"]]
    assert by_page == expected


async def test_no_page_query_past_the_end(
    infra: Infra, catalogue: list[GalleryVideo], users: Users
) -> None:
    """Page-number mode counts first; when the page lies past the end (a search with no
    hit, above all) the page query is not run. On PostgreSQL a no-hit search's page
    query walks the whole sort index (see docs/benchmarks.md), while the count is cheap."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    sync_engine = infra.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        for params, found in (
            (ListParams(q="zzz"), 0),
            (ListParams(page=50), 0),
            (ListParams(page=2, per_page=20), 3),
            (ListParams(q="alpha"), 3),
        ):
            statements.clear()
            async with infra.sessions() as session:
                result = await list_videos(session, None, params)
            assert len(result.items) == found, params
            assert result.next_cursor is None
            selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
            # The count, plus the page query only when there is something to show.
            assert len(selects) == (2 if found else 1), (params, selects)
        assert result.total == 3
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


@pytest.mark.parametrize("sort", list(VideoSort))
async def test_few_hit_searches_are_paged_from_their_matches(
    infra: Infra,
    catalogue: list[GalleryVideo],
    users: Users,
    monkeypatch: pytest.MonkeyPatch,
    sort: VideoSort,
) -> None:
    """On PostgreSQL a search with few hits is sorted from its full-text matches (an
    order no index serves), in page-number and cursor mode alike, and pages exactly as
    the index-walking plan does; SQLite keeps its one plan."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    async def pages(params: ListParams) -> tuple[list[list[Any]], list[str]]:
        statements.clear()
        seen: list[list[Any]] = []
        cursor: str | None = None
        while True:
            async with infra.sessions() as session:
                result = await list_videos(
                    session, None, ListParams(q=params.q, sort=sort, per_page=1, cursor=cursor)
                )
            seen.append([v.id for v in result.items])
            cursor = result.next_cursor
            if cursor is None:
                return seen, list(statements)

    sync_engine = infra.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        from_matches, sql = await pages(ListParams(q="alpha"))
        monkeypatch.setattr("videoforge.gallery.search.FEW_HITS", 0)
        walking, walking_sql = await pages(ListParams(q="alpha"))
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
    assert from_matches == walking
    assert sum(len(p) for p in from_matches) == 3
    markers = ("interval '0'", "concat(", "views + 0", "likes + 0")

    def unindexed_order(statements: list[str]) -> list[str]:
        return [s for s in statements if "ORDER BY" in s and any(m in s for m in markers)]

    unindexed = unindexed_order(sql)
    if infra.engine.dialect.name == "postgresql":
        assert unindexed, sql
        assert not unindexed_order(walking_sql)
    else:
        assert not unindexed


async def test_page_numbers_count_up_to_the_cap(
    infra: Infra, catalogue: list[GalleryVideo], client: httpx.AsyncClient
) -> None:
    """Counting stops at the cap: the total is then a lower bound ("10+"), and pages go
    on past it, in the same order as always."""
    newest = _expected(catalogue, "newest")
    async with infra.sessions() as session:
        capped = await list_videos(session, None, ListParams(per_page=4, count_cap=10))
        beyond = await list_videos(session, None, ListParams(page=4, per_page=4, count_cap=10))
        exact = await list_videos(session, None, ListParams(per_page=4, count_cap=23))
        searched = await list_videos(session, None, ListParams(q="alpha", count_cap=10))
        by_cursor = await list_videos(session, None, ListParams(cursor=capped.next_cursor))
    assert (capped.total, capped.total_exact) == (10, False)
    assert [str(v.id) for v in capped.items] == newest[:4]
    assert capped.next_cursor is not None
    # Page 4 starts at row 13, past the cap of 10: served all the same.
    assert [str(v.id) for v in beyond.items] == newest[12:16]
    assert (exact.total, exact.total_exact) == (23, True)
    assert (searched.total, searched.total_exact) == (3, True)
    assert (by_cursor.total, by_cursor.total_exact) == (None, None)

    body = (await client.get("/api/gallery/videos", params={"per_page": 2})).json()
    assert (body["total"], body["total_exact"]) == (23, True)
    body = (await client.get("/api/gallery/videos", params={"cursor": body["next_cursor"]})).json()
    assert (body["total"], body["total_exact"]) == (None, None)


async def test_page_numbers_stop_at_the_counted_rows(
    infra: Infra, catalogue: list[GalleryVideo], client: httpx.AsyncClient
) -> None:
    """Page numbers reach the first MAX_OFFSET rows; past them, a clear 400 points at
    the cursor, which goes on from the last page numbers reach."""
    async with infra.sessions() as session:
        last = await list_videos(session, None, ListParams(page=3, per_page=4, max_offset=12))
        with pytest.raises(BadRequest) as refused:
            await list_videos(session, None, ListParams(page=4, per_page=4, max_offset=12))
        onwards = await list_videos(
            session, None, ListParams(per_page=4, max_offset=12, cursor=last.next_cursor)
        )
    assert refused.value.code == "page_too_deep"
    assert [str(v.id) for v in onwards.items] == _expected(catalogue, "newest")[12:16]

    deepest = search.MAX_OFFSET // 100
    r = await client.get("/api/gallery/videos", params={"page": deepest, "per_page": 100})
    assert r.status_code == 200
    assert r.json()["items"] == []
    r = await client.get("/api/gallery/videos", params={"page": deepest + 1, "per_page": 100})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "page_too_deep"
    assert "next_cursor" in r.json()["error"]["message"]
