"""The upload flow end to end against the local store and S3 (moto on loopback):
real bytes sent to the presigned form / part URLs, then confirm."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import boto3
import httpx
import pytest

from videoforge.gallery.models import GalleryUpload, UploadState
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.keys import final_key

from .conftest import Users

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def settings_extra(request: pytest.FixtureRequest, unique: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "UPLOAD_MULTIPART_THRESHOLD": 1024 * 1024,
        "UPLOAD_PART_SIZE": 5 * MiB,
        "UPLOAD_MAX_BYTES": 8 * MiB,
    }
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"vf-gallery-{unique}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=bucket
        )
        extra |= {"S3_BUCKET_NAME": bucket, "AWS_ENDPOINT_URL": endpoint, "S3_PATH_STYLE": True}
    return extra


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Relative URLs (the local store) go to the app; absolute ones (S3) over the network."""
    if url.startswith("/"):
        return await client.request(method, url, **kwargs)
    async with httpx.AsyncClient() as outside:
        return await outside.request(method, url, **kwargs)


async def _ticket(
    client: httpx.AsyncClient, headers: dict[str, str], size: int, filename: str = "clip.mp4"
) -> dict[str, Any]:
    r = await client.post(
        "/api/upload/url",
        json={"filename": filename, "content_type": "video/mp4", "size": size},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _upload_single(
    client: httpx.AsyncClient, ticket: dict[str, Any], data: bytes
) -> httpx.Response:
    single = ticket["single"]
    return await _send(
        client,
        "POST",
        single["url"],
        data=single["fields"],
        files={"file": ("clip.mp4", data, "video/mp4")},
    )


async def test_upload_confirm_and_confirm_again(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, len(tiny_mp4))
    assert ticket["multipart"] is None
    assert re.fullmatch(rf"originals/{users.owner_id}/[A-Za-z0-9_-]+/source", ticket["key"])
    r = await _upload_single(client, ticket, tiny_mp4)
    assert r.status_code in (200, 201, 204), r.text
    info = await infra.storage.head(ticket["key"])
    assert info is not None
    assert info.size == len(tiny_mp4)

    # Someone else's key is a 404, and does not consume the upload.
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.other)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "upload_not_found"

    r = await client.post(
        "/api/upload/confirm",
        json={"key": ticket["key"], "title": "My clip", "visibility": "public"},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    video = r.json()
    assert video["status"] == "uploaded"
    # The original has its own key; the upload key (which URLs name) is gone.
    assert video["s3_key"] == final_key(ticket["key"])
    assert await infra.storage.get_bytes(video["s3_key"]) == tiny_mp4
    assert await infra.storage.head(ticket["key"]) is None
    assert video["file_size"] == len(tiny_mp4)
    assert video["title"] == "My clip"
    assert video["original_filename"] == "clip.mp4"

    again = await client.post(
        "/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner
    )
    assert again.status_code == 200
    assert again.json()["id"] == video["id"]

    listed = await client.get("/api/gallery/videos", params={"owner": "me"}, headers=users.owner)
    assert [v["id"] for v in listed.json()["items"]] == [video["id"]]


async def test_html_named_mp4_is_rejected_and_deleted(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    page = b"<!DOCTYPE html><html><script>alert(1)</script></html>" * 4
    ticket = await _ticket(client, users.owner, len(page), filename="evil.mp4")
    r = await _upload_single(client, ticket, page)
    assert r.status_code in (200, 201, 204), r.text
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert await infra.storage.head(ticket["key"]) is None
    # The session is closed: confirming again is a 404, and no video exists.
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 404
    listed = await client.get("/api/gallery/videos", params={"owner": "me"}, headers=users.owner)
    assert listed.json()["items"] == []


async def test_oversize_object_is_rejected_and_deleted(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, 1000)
    # Bytes that got into the store beyond the limit (a store that did not enforce the
    # policy): confirm is the second line of defence.
    big = tiny_mp4 + b"\0" * (infra.settings.upload_max_bytes + 1 - len(tiny_mp4))
    await infra.storage.put_bytes(ticket["key"], big, content_type="video/mp4")
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "upload_too_large"
    assert await infra.storage.head(ticket["key"]) is None


async def test_post_policy_limits_the_declared_size(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    tiny_mp4: bytes,
    settings_extra: dict[str, Any],
) -> None:
    ticket = await _ticket(client, users.owner, 100)
    if "S3_BUCKET_NAME" in settings_extra:
        # moto does not verify POST policies; S3 does. Assert what was signed.
        policy = json.loads(base64.b64decode(ticket["single"]["fields"]["policy"]))
        assert ["content-length-range", 1, 100] in policy["conditions"]
        return
    r = await _upload_single(client, ticket, tiny_mp4)
    assert r.status_code == 413
    assert await infra.storage.head(ticket["key"]) is None


async def test_confirm_before_upload_is_404_and_keeps_session(
    client: httpx.AsyncClient, users: Users, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, len(tiny_mp4))
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 404
    await _upload_single(client, ticket, tiny_mp4)
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 201


async def test_refused_requests(client: httpx.AsyncClient, users: Users, infra: Infra) -> None:
    too_big = infra.settings.upload_max_bytes + 1
    r = await client.post(
        "/api/upload/url",
        json={"filename": "a.mp4", "content_type": "video/mp4", "size": too_big},
        headers=users.owner,
    )
    assert r.status_code == 413
    r = await client.post(
        "/api/upload/url",
        json={"filename": "a.svg", "content_type": "image/svg+xml", "size": 10},
        headers=users.owner,
    )
    assert r.status_code == 415


async def test_hostile_file_names_change_nothing_in_the_key(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    for name in ["../../etc/passwd", "..\\..\\x.mp4", "a\u202egpm.exe", "n" * 1000]:
        ticket = await _ticket(client, users.owner, len(tiny_mp4), filename=name)
        assert re.fullmatch(rf"originals/{users.owner_id}/[A-Za-z0-9_-]+/source", ticket["key"])
        async with infra.sessions() as session:
            row = await session.get(GalleryUpload, ticket["key"])
        assert row is not None
        assert "/" not in row.filename
        assert "\\" not in row.filename
        assert "\u202e" not in row.filename
        assert len(row.filename) <= 255


async def test_multipart_upload_complete_confirm(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    data = tiny_mp4 + b"\0" * (5 * MiB + 100 - len(tiny_mp4))
    ticket = await _ticket(client, users.owner, len(data))
    assert ticket["single"] is None
    multipart = ticket["multipart"]
    assert multipart["part_size"] == 5 * MiB
    assert [p["part_number"] for p in multipart["parts"]] == [1, 2]

    # Resume: fresh URLs for part 2.
    r = await client.post(
        "/api/upload/multipart/parts",
        json={"key": ticket["key"], "upload_id": multipart["upload_id"], "part_numbers": [2]},
        headers=users.owner,
    )
    assert r.status_code == 200, r.text
    urls = {1: multipart["parts"][0]["url"], 2: r.json()["parts"][0]["url"]}

    parts = []
    for number, chunk in ((1, data[: 5 * MiB]), (2, data[5 * MiB :])):
        put = await _send(client, "PUT", urls[number], content=chunk)
        assert put.status_code == 200, put.text
        parts.append({"part_number": number, "etag": put.headers["etag"]})

    # Someone else cannot complete it.
    body = {"key": ticket["key"], "upload_id": multipart["upload_id"], "parts": parts}
    r = await client.post("/api/upload/multipart/complete", json=body, headers=users.other)
    assert r.status_code == 404
    r = await client.post("/api/upload/multipart/complete", json=body, headers=users.owner)
    assert r.status_code == 204, r.text
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 201, r.text
    assert r.json()["file_size"] == len(data)


async def test_multipart_abort(client: httpx.AsyncClient, users: Users, infra: Infra) -> None:
    ticket = await _ticket(client, users.owner, 6 * MiB)
    upload_id = ticket["multipart"]["upload_id"]
    r = await client.post(
        "/api/upload/multipart/abort",
        json={"key": ticket["key"], "upload_id": upload_id},
        headers=users.owner,
    )
    assert r.status_code == 204
    async with infra.sessions() as session:
        row = await session.get(GalleryUpload, ticket["key"])
    assert row is not None
    assert row.state is UploadState.ABORTED
    in_progress = await infra.storage.list_multipart_uploads("originals/")
    assert all(uid != upload_id for _, uid, _ in in_progress)
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 404


async def test_empty_object_is_not_what_was_declared(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    ticket = await _ticket(client, users.owner, 10)
    await infra.storage.put_bytes(ticket["key"], b"", content_type="video/mp4")
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "upload_size_mismatch"
    assert await infra.storage.head(ticket["key"]) is None
