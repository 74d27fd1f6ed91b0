"""The authorisation matrix of playlists: anonymous / owner / other user / admin x
public / unlisted / private playlist x public / unlisted / private video x every
playlist endpoint, on SQLite and PostgreSQL. Each cell is an expected status."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from videoforge.gallery.models import Visibility

from .conftest import SeedVideo, Users
from .test_authz_matrix import CALLERS, PRIV, PUB, UNL, _headers

BASE = "/api/gallery/playlists"

_SEE = {"anonymous": 200, "owner": 200, "other": 200, "admin": 200}
_SEE_PRIVATE = {"anonymous": 404, "owner": 200, "other": 404, "admin": 200}


def _owner_only(ok: int) -> dict[Visibility, dict[str, int]]:
    """Only the owner changes a playlist; a private one is a 404 to everyone who may not
    see it (an admin sees it, and is refused)."""
    return {
        PUB: {"anonymous": 401, "owner": ok, "other": 403, "admin": 403},
        UNL: {"anonymous": 401, "owner": ok, "other": 403, "admin": 403},
        PRIV: {"anonymous": 404, "owner": ok, "other": 404, "admin": 403},
    }


# endpoint -> playlist visibility -> caller -> expected status
MATRIX: dict[str, dict[Visibility, dict[str, int]]] = {
    "get": {PUB: _SEE, UNL: _SEE, PRIV: _SEE_PRIVATE},
    "videos": {PUB: _SEE, UNL: _SEE, PRIV: _SEE_PRIVATE},
    "update": _owner_only(200),
    "add": _owner_only(201),
    "move": _owner_only(200),
    "remove": _owner_only(204),
    "delete": {
        PUB: {"anonymous": 401, "owner": 204, "other": 403, "admin": 204},
        UNL: {"anonymous": 401, "owner": 204, "other": 403, "admin": 204},
        PRIV: {"anonymous": 404, "owner": 204, "other": 404, "admin": 204},
    },
    # Listed (1) or not (0) among the owner's playlists on their page.
    "listed": {
        PUB: {"anonymous": 1, "owner": 1, "other": 1, "admin": 1},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
    },
}

# video visibility -> caller -> the entry shows the video (1) or is unavailable (0)
AVAILABLE: dict[Visibility, dict[str, int]] = {
    PUB: {"anonymous": 1, "owner": 1, "other": 1, "admin": 1},
    UNL: {"anonymous": 1, "owner": 1, "other": 1, "admin": 1},
    PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
}

# video visibility -> caller -> adding the video to one's own Watch later
WATCH_LATER_ADD: dict[Visibility, dict[str, int]] = {
    PUB: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
    UNL: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
    PRIV: {"anonymous": 401, "owner": 201, "other": 404, "admin": 201},
}


@pytest.mark.parametrize("video_visibility", [PUB, UNL, PRIV], ids=lambda v: f"video-{v}")
@pytest.mark.parametrize("playlist_visibility", [PUB, UNL, PRIV], ids=lambda v: f"list-{v}")
@pytest.mark.parametrize("caller", CALLERS)
async def test_playlist_matrix(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    caller: str,
    playlist_visibility: Visibility,
    video_visibility: Visibility,
) -> None:
    headers = _headers(users, caller)
    video = await seed_video(
        users.owner_id,
        title="Matrix video",
        visibility=video_visibility,
        thumbnail_key="outputs/m/thumbnail.jpg",
    )
    second = await seed_video(users.owner_id, title="Second")
    third = await seed_video(users.owner_id, title="Third")
    r = await client.post(
        BASE,
        json={"title": "Matrix list", "visibility": playlist_visibility.value},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    for v in (video, second):
        r = await client.post(
            f"{BASE}/{pid}/videos", json={"video_id": str(v.id)}, headers=users.owner
        )
        assert r.status_code == 201, r.text

    def expect(endpoint: str) -> int:
        return MATRIX[endpoint][playlist_visibility][caller]

    def check(endpoint: str, r: httpx.Response) -> None:
        assert r.status_code == expect(endpoint), (endpoint, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["code"], endpoint
        if r.status_code == 404:
            assert r.json()["error"]["code"] == "playlist_not_found", endpoint

    r = await client.get(f"{BASE}/{pid}", headers=headers)
    check("get", r)

    r = await client.get(f"{BASE}/{pid}/videos", headers=headers)
    check("videos", r)
    if r.status_code == 200:
        items = r.json()["items"]
        shown = AVAILABLE[video_visibility][caller]
        assert [i["available"] for i in items] == [bool(shown), True]
        if not shown:
            # Nothing of the video: not its title, its thumbnail or its id.
            assert "Matrix video" not in r.text
            assert "thumbnail.jpg" not in r.text
            assert str(video.id) not in r.text

    listed = await client.get(BASE, params={"owner": users.owner_id}, headers=headers)
    assert listed.status_code == 200
    assert (pid in [p["id"] for p in listed.json()["items"]]) == bool(expect("listed"))

    r = await client.post(
        f"{BASE}/watch-later/videos", json={"video_id": str(video.id)}, headers=headers
    )
    assert r.status_code == WATCH_LATER_ADD[video_visibility][caller], r.text

    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("update", "PATCH", f"{BASE}/{pid}", {"json": {"description": "changed"}}),
        ("add", "POST", f"{BASE}/{pid}/videos", {"json": {"video_id": str(third.id)}}),
        ("move", "POST", f"{BASE}/{pid}/videos/{second.id}/move", {"json": {"position": 0}}),
        ("remove", "DELETE", f"{BASE}/{pid}/videos/{video.id}", {}),
        ("delete", "DELETE", f"{BASE}/{pid}", {}),
    ]
    for endpoint, method, path, kwargs in calls:
        r = await client.request(method, path, headers=headers, **kwargs)
        check(endpoint, r)

    after = await client.get(f"{BASE}/{pid}", headers=users.owner)
    assert after.status_code == (404 if expect("delete") == 204 else 200)
    if after.status_code == 200:
        changed = expect("update") == 200
        assert (after.json()["description"] == "changed") == changed
        entries = await client.get(f"{BASE}/{pid}/videos", headers=users.owner)
        titles = [i["video"]["title"] for i in entries.json()["items"]]
        # The owner's changes (add third, move second first, remove the video) or none.
        assert titles == (["Second", "Third"] if changed else ["Matrix video", "Second"])


async def test_missing_playlist_is_404_for_everyone(
    client: httpx.AsyncClient, users: Users
) -> None:
    missing = uuid.uuid4()
    for headers in ({}, users.owner, users.admin):
        r = await client.get(f"{BASE}/{missing}/videos", headers=headers)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "playlist_not_found"
