"""Playlists and Watch later (gallery.playlists): the lists, their entries in order,
reordering by one-row moves, what an entry shows of a video its viewer may not see,
and what deleting a video or a playlist does to the entries."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gallery.models import VideoStatus, Visibility
from videoforge.gallery.playlists import repository, service
from videoforge.gallery.playlists.models import GalleryPlaylistItem
from videoforge.gallery.playlists.repository import MIN_GAP, STEP
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra

from .conftest import SeedVideo, Users

BASE = "/api/gallery/playlists"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    r = await client.post(BASE, json={"title": "Mix", **body}, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def _add(
    client: httpx.AsyncClient, headers: dict[str, str], playlist: str, video: uuid.UUID
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{playlist}/videos", json={"video_id": str(video)}, headers=headers
    )


async def _titles(client: httpx.AsyncClient, headers: dict[str, str], playlist: str) -> list[Any]:
    r = await client.get(f"{BASE}/{playlist}/videos", params={"limit": 100}, headers=headers)
    assert r.status_code == 200, r.text
    return [i["video"]["title"] if i["available"] else None for i in r.json()["items"]]


async def _entries(infra: Infra) -> int:
    async with infra.sessions() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(GalleryPlaylistItem))
            ).scalar_one()
        )


async def test_create_edit_list_and_delete(client: httpx.AsyncClient, users: Users) -> None:
    created = await _create(
        client, users.owner, title="  Road trip \n", description="Songs\nfor the car"
    )
    assert created["title"] == "Road trip"
    assert created["description"] == "Songs\nfor the car"
    assert created["visibility"] == "private"  # the default, as YouTube's
    assert created["kind"] == "regular"
    assert created["video_count"] == 0
    pid = created["id"]

    r = await client.patch(
        f"{BASE}/{pid}", json={"title": "Trip", "visibility": "public"}, headers=users.owner
    )
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["visibility"]) == ("Trip", "public")
    assert r.json()["description"] == "Songs\nfor the car"  # not sent: unchanged

    mine = (await client.get(BASE, headers=users.owner)).json()["items"]
    assert [p["kind"] for p in mine] == ["watch_later", "regular"]  # Watch later first

    r = await client.delete(f"{BASE}/{pid}", headers=users.owner)
    assert r.status_code == 204
    assert (await client.get(f"{BASE}/{pid}", headers=users.owner)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 151},
        {"title": "ok", "description": "d" * 5001},
        {"title": "ok", "visibility": "secret"},
        {"title": "ok", "extra": 1},
        {},
    ],
)
async def test_invalid_playlists_are_422(
    client: httpx.AsyncClient, users: Users, body: dict[str, Any]
) -> None:
    r = await client.post(BASE, json=body, headers=users.owner)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"]


async def test_invalid_edits_are_422(client: httpx.AsyncClient, users: Users) -> None:
    pid = (await _create(client, users.owner))["id"]
    for body in ({"title": None}, {"visibility": None}, {"title": ""}, {"title": "x" * 151}):
        r = await client.patch(f"{BASE}/{pid}", json=body, headers=users.owner)
        assert r.status_code == 422, (body, r.text)
    assert (await client.get(f"{BASE}/{pid}", headers=users.owner)).json()["title"] == "Mix"


async def test_watch_later_is_made_once_and_stays_fixed(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    # Concurrent first uses (the listing, the alias, an add) end with exactly one.
    answers = await asyncio.gather(
        *[client.get(BASE, headers=users.owner) for _ in range(4)],
        *[client.get(f"{BASE}/watch-later", headers=users.owner) for _ in range(4)],
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    ids = {a.json()["id"] for a in answers[4:]}
    ids |= {p["id"] for a in answers[:4] for p in a.json()["items"]}
    assert len(ids) == 1
    wl = answers[4].json()
    assert (wl["kind"], wl["title"], wl["visibility"]) == ("watch_later", "Watch later", "private")

    for body in ({"title": "Later"}, {"visibility": "public"}, {"description": "x"}):
        r = await client.patch(f"{BASE}/watch-later", json=body, headers=users.owner)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "watch_later_fixed"
    r = await client.delete(f"{BASE}/{wl['id']}", headers=users.owner)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "watch_later_fixed"
    # Nobody else's "watch-later" is theirs: the alias is always the caller's own.
    other = (await client.get(f"{BASE}/watch-later", headers=users.other)).json()
    assert other["id"] != wl["id"]
    assert (await client.get(f"{BASE}/{wl['id']}", headers=users.other)).status_code == 404
    assert (await client.get(f"{BASE}/watch-later")).status_code == 401


async def test_watch_later_is_made_by_the_first_add(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.other_id, title="Later")
    r = await _add(client, users.owner, "watch-later", video.id)
    assert r.status_code == 201, r.text
    assert await _titles(client, users.owner, "watch-later") == ["Later"]
    r = await client.get(BASE, params={"video_id": str(video.id)}, headers=users.owner)
    assert [(p["kind"], p["contains_video"]) for p in r.json()["items"]] == [("watch_later", True)]
    r = await client.delete(f"{BASE}/watch-later/videos/{video.id}", headers=users.owner)
    assert r.status_code == 204
    assert await _titles(client, users.owner, "watch-later") == []


async def test_add_move_remove_in_order(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    pid = (await _create(client, users.owner, visibility="public"))["id"]
    videos = [await seed_video(users.other_id, title=t) for t in "ABCD"]
    for position, video in enumerate(videos):
        r = await _add(client, users.owner, pid, video.id)
        assert r.status_code == 201, r.text
        assert (r.json()["position"], r.json()["added"]) == (position, True)
    # Adding again is idempotent: 200, nothing changes.
    again = await _add(client, users.owner, pid, videos[1].id)
    assert again.status_code == 200
    assert (again.json()["added"], again.json()["position"], again.json()["video_count"]) == (
        False,
        1,
        4,
    )
    assert await _titles(client, users.owner, pid) == ["A", "B", "C", "D"]

    async def move(video: uuid.UUID, position: int) -> httpx.Response:
        return await client.post(
            f"{BASE}/{pid}/videos/{video}/move", json={"position": position}, headers=users.owner
        )

    assert (await move(videos[3].id, 0)).json()["position"] == 0
    assert await _titles(client, users.owner, pid) == ["D", "A", "B", "C"]
    assert (await move(videos[3].id, 2)).status_code == 200
    assert await _titles(client, users.owner, pid) == ["A", "B", "D", "C"]
    # Past the end: last.
    assert (await move(videos[0].id, 99)).json()["position"] == 3
    assert await _titles(client, users.owner, pid) == ["B", "D", "C", "A"]
    assert (await move(videos[2].id, 1)).status_code == 200
    assert await _titles(client, users.owner, pid) == ["B", "C", "D", "A"]

    r = await client.delete(f"{BASE}/{pid}/videos/{videos[2].id}", headers=users.owner)
    assert r.status_code == 204
    assert await _titles(client, users.owner, pid) == ["B", "D", "A"]
    r = await client.delete(f"{BASE}/{pid}/videos/{videos[2].id}", headers=users.owner)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_in_playlist"
    r = await move(videos[2].id, 0)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_in_playlist"
    # A video in many playlists.
    second = (await _create(client, users.owner, title="Second"))["id"]
    assert (await _add(client, users.owner, second, videos[0].id)).status_code == 201
    assert await _titles(client, users.owner, second) == ["A"]


async def test_moves_into_one_spot_renumber_once_the_gap_wears_out(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    pid = (await _create(client, users.owner))["id"]
    videos = [await seed_video(users.owner_id, title=f"v{i}") for i in range(4)]
    for video in videos:
        await _add(client, users.owner, pid, video.id)
    # Always between the first and the second: each move halves the same gap, 60
    # halvings wear a 1024 gap below MIN_GAP, and the order must hold throughout.
    expected = [v.title for v in videos]
    for n in range(60):
        moving = videos[2 + n % 2]
        r = await client.post(
            f"{BASE}/{pid}/videos/{moving.id}/move", json={"position": 1}, headers=users.owner
        )
        assert r.status_code == 200, r.text
        expected.remove(moving.title)
        expected.insert(1, moving.title)
        assert await _titles(client, users.owner, pid) == expected, n
    async with infra.sessions() as session:
        positions = sorted(
            (
                await session.execute(
                    select(GalleryPlaylistItem.position).where(
                        GalleryPlaylistItem.playlist_id == uuid.UUID(pid)
                    )
                )
            ).scalars()
        )
    # Without renumbering, 60 halvings would leave a gap of 1024 / 2**60 (about 1e-15);
    # a split is refused below MIN_GAP, so no gap is narrower than half of it.
    assert min(b - a for a, b in itertools.pairwise(positions)) >= MIN_GAP / 2


def test_between_takes_the_midpoint_or_asks_for_renumbering() -> None:
    assert service.between(None, None) == STEP
    assert service.between(None, 10.0) == 10.0 - STEP
    assert service.between(10.0, None) == 10.0 + STEP
    assert service.between(1.0, 2.0) == 1.5
    assert service.between(1.0, 1.0 + 1e-9) is None
    assert service.between(5.0, 5.0) is None


async def test_pages_follow_the_order_with_a_cursor(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    pid = (await _create(client, users.owner, visibility="unlisted"))["id"]
    for i in range(7):
        video = await seed_video(users.owner_id, title=f"t{i}")
        await _add(client, users.owner, pid, video.id)
    seen: list[tuple[int, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"{BASE}/{pid}/videos", params=params)  # by link, anonymous
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [(i["position"], i["video"]["title"]) for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [(i, f"t{i}") for i in range(7)]
    assert body["playlist"]["video_count"] == 7

    other = (await _create(client, users.owner))["id"]
    first = (await client.get(f"{BASE}/{pid}/videos", params={"limit": 3})).json()
    for bad in (first["next_cursor"], "garbage", "e30", "eyJsIjoxfQ"):
        r = await client.get(f"{BASE}/{other}/videos", params={"cursor": bad}, headers=users.owner)
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "invalid_cursor"


async def test_entries_hide_what_the_viewer_may_not_see(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    pid = (await _create(client, users.owner, visibility="public"))["id"]
    public = await seed_video(users.owner_id, title="Public one", thumbnail_key="t/p.jpg")
    private = await seed_video(
        users.owner_id,
        title="Secret one",
        visibility=Visibility.PRIVATE,
        thumbnail_key="t/s.jpg",
    )
    hidden = await seed_video(users.owner_id, title="Hidden one", hidden=True)
    for video in (private, public, hidden):
        assert (await _add(client, users.owner, pid, video.id)).status_code == 201

    r = await client.get(f"{BASE}/{pid}/videos", headers=users.other)
    body = r.json()
    assert [i["available"] for i in body["items"]] == [False, True, False]
    assert body["items"][0] == {
        "position": 0,
        "available": False,
        "video_id": None,
        "added_at": None,
        "video": None,
    }
    assert "Secret" not in r.text
    assert "Hidden" not in r.text
    assert str(private.id) not in r.text
    # The list's thumbnail is the first video the viewer may see, not the private one.
    assert body["playlist"]["video_count"] == 3
    assert "t/p.jpg" in (body["playlist"]["thumbnail_url"] or "")
    anonymous = await client.get(f"{BASE}/{pid}/videos")
    assert [i["available"] for i in anonymous.json()["items"]] == [False, True, False]
    # Their owner sees them all.
    mine = (await client.get(f"{BASE}/{pid}/videos", headers=users.owner)).json()
    assert [i["available"] for i in mine["items"]] == [True, True, True]
    assert "t/s.jpg" in (mine["playlist"]["thumbnail_url"] or "")


async def test_each_listed_playlist_has_its_own_first_thumbnail(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    """A list of playlists: each thumbnail is its own list's first video (one query for
    all of them), moved entries included; an empty list has none."""
    lists = {name: (await _create(client, users.owner, title=name))["id"] for name in "ABC"}
    for name, keys in (("A", ["a1", "a2"]), ("B", ["b1", "b2", "b3"])):
        for key in keys:
            video = await seed_video(users.owner_id, title=key, thumbnail_key=f"t/{key}.jpg")
            assert (await _add(client, users.owner, lists[name], video.id)).status_code == 201
            if key == "b3":
                moved = await client.post(
                    f"{BASE}/{lists[name]}/videos/{video.id}/move",
                    json={"position": 0},
                    headers=users.owner,
                )
                assert moved.status_code == 200, moved.text
    r = await client.get(BASE, headers=users.owner)
    thumbs = {p["title"]: p["thumbnail_url"] for p in r.json()["items"]}
    assert "t/a1.jpg" in (thumbs["A"] or "")
    assert "t/b3.jpg" in (thumbs["B"] or "")
    assert thumbs["C"] is None


async def test_adding_needs_a_video_the_caller_may_see(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    pid = (await _create(client, users.other))["id"]
    private = await seed_video(users.owner_id, visibility=Visibility.PRIVATE)
    unlisted = await seed_video(users.owner_id, visibility=Visibility.UNLISTED)
    r = await _add(client, users.other, pid, private.id)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "video_not_found"
    r = await _add(client, users.other, pid, uuid.uuid4())
    assert r.status_code == 404
    assert (await _add(client, users.other, pid, unlisted.id)).status_code == 201


async def test_deleting_a_video_or_a_playlist_removes_its_entries(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    first = (await _create(client, users.owner))["id"]
    second = (await _create(client, users.owner, title="Two"))["id"]
    doomed = await seed_video(users.owner_id, title="Doomed")
    kept = await seed_video(users.owner_id, title="Kept")
    for pid in (first, second):
        await _add(client, users.owner, pid, doomed.id)
        await _add(client, users.owner, pid, kept.id)
    assert await _entries(infra) == 4

    r = await client.delete(f"/api/gallery/videos/{doomed.id}", headers=users.owner)
    assert r.status_code == 204
    assert await _titles(client, users.owner, first) == ["Kept"]
    assert (await client.get(f"{BASE}/{second}", headers=users.owner)).json()["video_count"] == 1
    assert await _entries(infra) == 2

    assert (await client.delete(f"{BASE}/{first}", headers=users.owner)).status_code == 204
    assert await _entries(infra) == 1
    # The video itself stays.
    assert (await client.get(f"/api/gallery/videos/{kept.id}")).status_code == 200


async def test_a_full_playlist_refuses_one_more(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "ITEMS_MAX", 2)
    pid = (await _create(client, users.owner))["id"]
    videos = [await seed_video(users.owner_id) for _ in range(3)]
    assert (await _add(client, users.owner, pid, videos[0].id)).status_code == 201
    assert (await _add(client, users.owner, pid, videos[1].id)).status_code == 201
    r = await _add(client, users.owner, pid, videos[2].id)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "playlist_full"
    # One already there is still fine (nothing is added).
    assert (await _add(client, users.owner, pid, videos[0].id)).status_code == 200


async def test_too_many_playlists_is_409(
    client: httpx.AsyncClient, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PLAYLISTS_MAX", 2)
    await _create(client, users.owner)
    await _create(client, users.owner)
    r = await client.post(BASE, json={"title": "Three"}, headers=users.owner)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "too_many_playlists"


async def test_an_uploaders_page_lists_their_public_playlists(
    client: httpx.AsyncClient, users: Users
) -> None:
    public = await _create(client, users.owner, title="Shown", visibility="public")
    await _create(client, users.owner, title="By link", visibility="unlisted")
    await _create(client, users.owner, title="Mine", visibility="private")
    await client.get(BASE, headers=users.owner)  # makes Watch later (private)

    def titles(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return [p["title"] for p in r.json()["items"]]

    params = {"owner": users.owner_id}
    assert titles(await client.get(BASE, params=params)) == ["Shown"]
    assert titles(await client.get(BASE, params=params, headers=users.other)) == ["Shown"]
    assert set(titles(await client.get(BASE, params=params, headers=users.admin))) == {
        "Watch later",
        "Shown",
        "By link",
        "Mine",
    }
    assert len(titles(await client.get(BASE, params=params, headers=users.owner))) == 4
    assert titles(await client.get(BASE, params={"owner": "nobody"})) == []
    assert public["id"] in (await client.get(BASE, params=params)).text
    r = await client.get(BASE)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "auth_required"


@pytest.mark.parametrize("ref", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "x" * 64])
async def test_unknown_playlists_are_404(client: httpx.AsyncClient, users: Users, ref: str) -> None:
    for method, path, body in [
        ("GET", f"{BASE}/{ref}", None),
        ("PATCH", f"{BASE}/{ref}", {"title": "x"}),
        ("DELETE", f"{BASE}/{ref}", None),
        ("GET", f"{BASE}/{ref}/videos", None),
        ("POST", f"{BASE}/{ref}/videos", {"video_id": str(uuid.uuid4())}),
        ("DELETE", f"{BASE}/{ref}/videos/{uuid.uuid4()}", None),
        ("POST", f"{BASE}/{ref}/videos/{uuid.uuid4()}/move", {"position": 0}),
    ]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        r = await client.request(method, path, headers=users.admin, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "playlist_not_found"


async def test_a_deleted_playlists_entries_are_gone_with_it(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    pid = (await _create(client, users.owner))["id"]
    await _add(client, users.owner, pid, (await seed_video(users.owner_id)).id)
    async with session_scope(infra.sessions) as session:
        assert await repository.count(session, uuid.UUID(pid)) == 1
    await client.delete(f"{BASE}/{pid}", headers=users.admin)  # an admin may delete it
    async with session_scope(infra.sessions) as session:
        assert await repository.count(session, uuid.UUID(pid)) == 0


async def test_concurrent_appends_each_take_their_own_place(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    pid = (await _create(client, users.owner))["id"]
    videos = [await seed_video(users.owner_id, title=f"c{i}") for i in range(6)]
    answers = await asyncio.gather(*[_add(client, users.owner, pid, v.id) for v in videos])
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    # The playlist row's lock serialises them: six places, none shared, none skipped.
    assert sorted(a.json()["position"] for a in answers) == list(range(6))
    titles = await _titles(client, users.owner, pid)
    assert sorted(titles) == [f"c{i}" for i in range(6)]
    # Every answer's place is where its video is listed.
    for answer in answers:
        assert titles[answer.json()["position"]] == next(
            v.title for v in videos if str(v.id) == answer.json()["video_id"]
        )


async def test_a_video_that_does_not_play_yet_is_unavailable_to_others(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    pid = (await _create(client, users.owner, visibility="public"))["id"]
    processing = await seed_video(
        users.owner_id, title="Still cooking", status=VideoStatus.PROCESSING
    )
    failed = await seed_video(users.owner_id, title="Broken", status=VideoStatus.FAILED)
    for video in (processing, failed):
        assert (await _add(client, users.owner, pid, video.id)).status_code == 201
    assert await _titles(client, users.other, pid) == [None, None]
    # Its owner sees them (and their status) to tidy up.
    r = await client.get(f"{BASE}/{pid}/videos", headers=users.owner)
    assert [i["video"]["status"] for i in r.json()["items"]] == ["processing", "failed"]
