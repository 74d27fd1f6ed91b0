"""The authorisation matrix: anonymous / owner / other user / admin x public / unlisted /
private x every endpoint, on SQLite and PostgreSQL. Each cell is an expected status."""

from __future__ import annotations

import uuid

import httpx
import pytest

from videoforge.gallery.models import Visibility

from .conftest import SeedVideo, Users

CALLERS = ("anonymous", "owner", "other", "admin")
PUB, UNL, PRIV = Visibility.PUBLIC, Visibility.UNLISTED, Visibility.PRIVATE

# endpoint -> visibility -> caller -> expected status
MATRIX: dict[str, dict[Visibility, dict[str, int]]] = {
    "get": {
        PUB: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        UNL: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200},
    },
    "stream": {
        PUB: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        UNL: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200},
    },
    "views": {
        PUB: {"anonymous": 202, "owner": 202, "other": 202, "admin": 202},
        UNL: {"anonymous": 202, "owner": 202, "other": 202, "admin": 202},
        PRIV: {"anonymous": 404, "owner": 202, "other": 404, "admin": 202},
    },
    "analytics": {
        PUB: {"anonymous": 401, "owner": 200, "other": 403, "admin": 200},
        UNL: {"anonymous": 401, "owner": 200, "other": 403, "admin": 200},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200},
    },
    "update": {
        PUB: {"anonymous": 401, "owner": 200, "other": 403, "admin": 403},
        UNL: {"anonymous": 401, "owner": 200, "other": 403, "admin": 403},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 403},
    },
    "delete": {
        PUB: {"anonymous": 401, "owner": 204, "other": 403, "admin": 204},
        UNL: {"anonymous": 401, "owner": 204, "other": 403, "admin": 204},
        PRIV: {"anonymous": 404, "owner": 204, "other": 404, "admin": 204},
    },
    # Listed (1) or not (0) in the listing, and in search results.
    "listed": {
        PUB: {"anonymous": 1, "owner": 1, "other": 1, "admin": 1},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
    },
    # The stream answer includes the original (download) only for the owner.
    "original": {
        PUB: {"anonymous": 0, "owner": 1, "other": 0, "admin": 0},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 0},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 0},
    },
    # The original's storage key is shown to the owner and admins only.
    "s3_key": {
        PUB: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
    },
}


def _headers(users: Users, caller: str) -> dict[str, str]:
    return {
        "anonymous": {},
        "owner": users.owner,
        "other": users.other,
        "admin": users.admin,
    }[caller]


def _ready_fields(job: uuid.UUID) -> dict[str, object]:
    return {
        "s3_key": f"originals/o/{job.hex}/source",
        "original_filename": "holiday.mp4",
        "content_type": "video/mp4",
        "hls_master_key": f"outputs/{job}/hls/master.m3u8",
        "thumbnail_key": f"outputs/{job}/thumbnail.jpg",
        "preview_key": f"outputs/{job}/preview.gif",
        "job_id": job,
        "duration": 3.0,
        "renditions": [
            {
                "quality": "240p",
                "width": 320,
                "height": 240,
                "bandwidth": 400000,
                "mp4_key": f"outputs/{job}/240p.mp4",
                "playlist_key": f"outputs/{job}/hls/240p/index.m3u8",
            }
        ],
    }


@pytest.mark.parametrize("visibility", [PUB, UNL, PRIV], ids=lambda v: v.value)
@pytest.mark.parametrize("caller", CALLERS)
async def test_matrix(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    visibility: Visibility,
    caller: str,
) -> None:
    headers = _headers(users, caller)
    video = await seed_video(
        users.owner_id,
        title="Matrix zebra",
        visibility=visibility,
        **_ready_fields(uuid.uuid4()),
    )
    url = f"/api/gallery/videos/{video.id}"

    def expect(endpoint: str) -> int:
        return MATRIX[endpoint][visibility][caller]

    r = await client.get(url, headers=headers)
    assert r.status_code == expect("get"), r.text
    if r.status_code == 200:
        assert (r.json()["s3_key"] is not None) == bool(expect("s3_key"))
    else:
        assert r.json()["error"]["code"] == "video_not_found"

    r = await client.get(f"/api/gallery/stream/{video.id}", headers=headers)
    assert r.status_code == expect("stream"), r.text
    if r.status_code == 200:
        assert (r.json()["original"] is not None) == bool(expect("original"))

    r = await client.post(f"{url}/views", headers=headers)
    assert r.status_code == expect("views"), r.text

    r = await client.get(f"{url}/analytics", headers=headers)
    assert r.status_code == expect("analytics"), r.text

    listed = await client.get("/api/gallery/videos", headers=headers)
    assert listed.status_code == 200
    ids = [item["id"] for item in listed.json()["items"]]
    assert (str(video.id) in ids) == bool(expect("listed"))
    found = await client.get("/api/gallery/videos", params={"q": "zebra"}, headers=headers)
    ids = [item["id"] for item in found.json()["items"]]
    assert (str(video.id) in ids) == bool(expect("listed"))

    r = await client.put(url, json={"description": "changed"}, headers=headers)
    assert r.status_code == expect("update"), r.text

    r = await client.delete(url, headers=headers)
    assert r.status_code == expect("delete"), r.text
    after = await client.get(url, headers=users.owner)
    assert after.status_code == (404 if expect("delete") == 204 else 200)


async def test_missing_video_is_404_everywhere(client: httpx.AsyncClient, users: Users) -> None:
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/api/gallery/videos/{missing}"),
        ("GET", f"/api/gallery/stream/{missing}"),
        ("POST", f"/api/gallery/videos/{missing}/views"),
        ("GET", f"/api/gallery/videos/{missing}/analytics"),
        ("PUT", f"/api/gallery/videos/{missing}"),
        ("DELETE", f"/api/gallery/videos/{missing}"),
    ]:
        kwargs = {"json": {"title": "x"}} if method == "PUT" else {}
        r = await client.request(method, path, headers=users.admin, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "video_not_found"


async def test_bad_token_is_401_not_anonymous(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    r = await client.get(
        f"/api/gallery/videos/{video.id}", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert r.status_code == 401
    assert "error" in r.json()


async def test_upload_endpoints_require_login(client: httpx.AsyncClient) -> None:
    for path, body in [
        ("/api/upload/url", {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}),
        ("/api/upload/confirm", {"key": "originals/x/y/source"}),
        (
            "/api/upload/multipart/complete",
            {"key": "k", "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]},
        ),
        ("/api/upload/multipart/abort", {"key": "k", "upload_id": "u"}),
        ("/api/upload/multipart/parts", {"key": "k", "upload_id": "u", "part_numbers": [1]}),
        ("/api/gallery/videos", {"title": "t", "source_url": "https://example.com/v.mp4"}),
    ]:
        r = await client.post(path, json=body)
        assert r.status_code == 401, (path, r.text)
