"""API behaviour on SQLite and PostgreSQL: reads, imports, edits with conflict
detection, health, the error format and the OpenAPI document."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from videoforge.gallery.app import create_app
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.s3.store import S3Storage

from .conftest import SeedVideo, Users


async def test_get_video_etag_and_private_fields(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(
        users.owner_id, title="Hello", s3_key="originals/x/y/source", original_filename="a.mp4"
    )
    r = await client.get(f"/api/gallery/videos/{video.id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Hello"
    assert body["user_id"] == users.owner_id
    assert body["s3_key"] is None
    assert body["original_filename"] is None
    assert r.headers["etag"] == '"1"'
    owner_view = (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()
    assert owner_view["s3_key"] == "originals/x/y/source"
    assert owner_view["original_filename"] == "a.mp4"


async def test_edit_applies_only_sent_fields(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="Title", description="Desc")
    url = f"/api/gallery/videos/{video.id}"
    r = await client.put(url, json={"description": "New desc"}, headers=users.owner)
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["description"], r.json()["version"]) == (
        "Title",
        "New desc",
        2,
    )
    assert r.headers["etag"] == '"2"'
    r = await client.put(url, json={"visibility": "unlisted"}, headers=users.owner)
    assert r.json()["visibility"] == "unlisted"
    assert r.json()["description"] == "New desc"
    r = await client.put(url, json={"title": None}, headers=users.owner)
    assert r.status_code == 422
    r = await client.put(url, json={"title": "   "}, headers=users.owner)
    assert r.status_code == 422
    r = await client.put(url, json={"owner": "me"}, headers=users.owner)
    assert r.status_code == 422  # unknown fields are refused, not ignored
    assert r.json()["error"]["code"] == "validation_error"


async def test_conflicting_edits_are_detected(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="v1")
    url = f"/api/gallery/videos/{video.id}"
    etag = (await client.get(url, headers=users.owner)).headers["etag"]
    ok = await client.put(url, json={"title": "mine"}, headers=users.owner | {"If-Match": etag})
    assert ok.status_code == 200
    stale = await client.put(
        url, json={"title": "theirs"}, headers=users.owner | {"If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "edit_conflict"
    stale_body = await client.put(url, json={"title": "theirs", "version": 1}, headers=users.owner)
    assert stale_body.status_code == 409
    assert stale_body.json()["error"]["code"] == "edit_conflict"
    assert (await client.get(url)).json()["title"] == "mine"

    # Two editors who read the same version at once: exactly one wins.
    version = (await client.get(url)).json()["version"]
    results = await asyncio.gather(
        *(
            client.put(url, json={"title": f"t{i}", "version": version}, headers=users.owner)
            for i in range(5)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409]
    winner = next(r.json()["title"] for r in results if r.status_code == 200)
    assert (await client.get(url)).json()["title"] == winner


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"title": "x", "version": 2**63}, 422, "validation_error"),
        ({"If-Match": '"9223372036854775808"'}, {"title": "x"}, 422, "invalid_if_match"),
        ({"If-Match": '"' + "9" * 40 + '"'}, {"title": "x"}, 422, "invalid_if_match"),
        ({"If-Match": b'"\xb2"'}, {"title": "x"}, 400, "invalid_if_match"),  # "²" isdigit()
        ({"If-Match": '""'}, {"title": "x"}, 400, "invalid_if_match"),
    ],
)
async def test_versions_no_video_can_have_are_refused_not_500(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    headers: dict[str, str | bytes],
    body: dict[str, object],
    status: int,
    code: str,
) -> None:
    video = await seed_video(users.owner_id, title="kept")
    url = f"/api/gallery/videos/{video.id}"
    # Bytes keep a header value that is not ASCII exactly as sent.
    sent = {k.encode(): v.encode() for k, v in users.owner.items()}
    sent |= {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in headers.items()}
    r = await client.put(url, json=body, headers=sent)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert (await client.get(url)).json()["title"] == "kept"


async def test_create_for_import_validates(client: httpx.AsyncClient, users: Users) -> None:
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "x", "source_url": "file:///etc/passwd"},
        headers=users.owner,
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    r = await client.post(
        "/api/gallery/videos",
        json={
            "title": "Clip",
            "description": "from the web",
            "visibility": "unlisted",
            "source_url": "https://example.com/v.mp4",
        },
        headers=users.owner,
    )
    assert r.status_code == 201
    body = r.json()
    assert (body["user_id"], body["status"], body["visibility"]) == (
        users.owner_id,
        "uploaded",
        "unlisted",
    )
    assert body["source_url"] == "https://example.com/v.mp4"


async def test_concurrent_confirms_return_one_video(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    r = await client.post(
        "/api/upload/url",
        json={"filename": "a.mp4", "content_type": "video/mp4", "size": len(tiny_mp4)},
        headers=users.owner,
    )
    key = r.json()["key"]
    await infra.storage.put_bytes(key, tiny_mp4, content_type="video/mp4")
    results = await asyncio.gather(
        *(
            client.post("/api/upload/confirm", json={"key": key}, headers=users.owner)
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in results}) == 1


async def test_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    checks = {"database": "ok", "cache": "ok", "storage": "ok"}
    assert r.json() == {"status": "ok", "checks": checks}


async def test_health_is_503_when_storage_is_unreachable(
    infra: Infra, moto_endpoint: str, unique: str
) -> None:
    missing_bucket = S3Storage(f"missing-{unique}", endpoint_url=moto_endpoint, path_style=True)
    broken = dataclasses.replace(infra, storage=missing_bucket)
    app = create_app(infra.settings, broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"].startswith("error")


async def test_one_error_format(client: httpx.AsyncClient) -> None:
    for r in (
        await client.get("/api/gallery/videos/not-a-uuid"),
        await client.get("/api/gallery/nothing-here"),
        await client.post("/api/upload/url", json={}),
    ):
        assert r.status_code in (401, 404, 422)
        error = r.json()["error"]
        assert set(error) >= {"code", "message"}


async def test_openapi_lists_every_endpoint_with_schemas(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/gallery/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    expected = {
        ("/api/gallery/videos", "get"): "VideoPage",
        ("/api/gallery/videos", "post"): "VideoRead",
        ("/api/gallery/videos/{video_id}", "get"): "VideoRead",
        ("/api/gallery/videos/{video_id}", "put"): "VideoRead",
        ("/api/gallery/videos/{video_id}", "delete"): None,
        ("/api/gallery/videos/{video_id}/views", "post"): "ViewRecorded",
        ("/api/gallery/videos/{video_id}/analytics", "get"): "VideoAnalytics",
        ("/api/gallery/stream/{video_id}", "get"): "StreamUrls",
        ("/api/gallery/stream/{video_id}/hls/{path}", "get"): None,
        ("/api/upload/url", "post"): "UploadTicket",
        ("/api/upload/confirm", "post"): "VideoRead",
        ("/api/upload/multipart/complete", "post"): None,
        ("/api/upload/multipart/abort", "post"): None,
        ("/api/upload/multipart/parts", "post"): "MultipartParts",
        ("/health", "get"): "HealthCheck",
    }
    for (path, method), schema in expected.items():
        operation = doc["paths"][path][method]
        assert operation.get("description"), (path, method)  # from the handler docstring
        if schema is not None:
            ok = operation["responses"][next(c for c in operation["responses"] if c < "300")]
            ref = ok["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith(f"/{schema}"), (path, method, ref)
            assert schema in doc["components"]["schemas"]
    bodies = {
        ("/api/gallery/videos", "post"): "VideoCreate",
        ("/api/gallery/videos/{video_id}", "put"): "VideoUpdate",
        ("/api/upload/url", "post"): "UploadRequest",
        ("/api/upload/confirm", "post"): "UploadConfirm",
        ("/api/upload/multipart/complete", "post"): "MultipartComplete",
        ("/api/upload/multipart/abort", "post"): "MultipartAbort",
        ("/api/upload/multipart/parts", "post"): "MultipartPartsRequest",
    }
    for (path, method), schema in bodies.items():
        ref = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert ref["$ref"].endswith(f"/{schema}"), (path, method)
    assert "ErrorBody" in doc["components"]["schemas"]
    assert doc["paths"]["/api/gallery/videos/{video_id}"]["get"]["responses"]["404"]


@pytest.mark.parametrize("settings_extra", [{"RATE_LIMITS": "upload_url=3600:-:3"}])
async def test_upload_urls_are_rate_limited(client: httpx.AsyncClient, users: Users) -> None:
    """Counted by the gallery itself, as RATE_LIMITS says (here 3 per user an hour)."""
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}
    statuses = [
        (await client.post("/api/upload/url", json=body, headers=users.owner)).status_code
        for _ in range(4)
    ]
    assert statuses == [201] * 3 + [429]
    # Another user is not affected.
    r = await client.post("/api/upload/url", json=body, headers=users.other)
    assert r.status_code == 201
