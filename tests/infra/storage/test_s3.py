"""S3Storage specifics: what is signed (moto does not check signatures, so the URLs and
the POST policy are asserted directly), the public presign endpoint, error mapping,
bucket creation with CORS, and backend selection."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from videoforge.infra.storage import LocalStorage, S3Storage, build_storage
from videoforge.infra.storage.base import ObjectChanged, ObjectNotFound, StorageError
from videoforge.settings import load_settings

MiB = 1024 * 1024


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
async def s3(moto_endpoint: str, unique: str) -> S3Storage:
    store = S3Storage(f"vf-sign-{unique}", endpoint_url=moto_endpoint, path_style=True)
    await store.ensure_bucket()
    return store


async def test_presigned_put_signs_type_length_key_and_lifetime(s3: S3Storage) -> None:
    key = "uploads/user-1/3f2a/original"
    url = await s3.presign_put(key, expires_in=900, content_type="video/mp4", content_length=1234)
    parts = urlsplit(url)
    query = _query(url)
    assert parts.path == f"/{s3.bucket}/{key}"
    assert query["X-Amz-Expires"] == "900"
    signed = query["X-Amz-SignedHeaders"].split(";")
    assert "content-type" in signed
    assert "content-length" in signed
    assert "host" in signed

    unsized = await s3.presign_put(key, expires_in=60, content_type="video/mp4")
    assert "content-length" not in _query(unsized)["X-Amz-SignedHeaders"].split(";")
    assert _query(unsized)["X-Amz-Expires"] == "60"


async def test_presigned_part_signs_its_length(s3: S3Storage) -> None:
    key = "uploads/user-1/3f2a/source"
    upload_id = await s3.create_multipart(key, content_type="video/mp4")
    url = await s3.presign_part(key, upload_id, 3, expires_in=900, content_length=16 * 1024**2)
    query = _query(url)
    assert (query["partNumber"], query["uploadId"]) == ("3", upload_id)
    assert "content-length" in query["X-Amz-SignedHeaders"].split(";")
    unsized = await s3.presign_part(key, upload_id, 3, expires_in=900)
    assert "content-length" not in _query(unsized)["X-Amz-SignedHeaders"].split(";")
    await s3.abort_multipart(key, upload_id)


async def test_large_copy_is_multipart_and_conditional(moto_endpoint: str, unique: str) -> None:
    s3 = S3Storage(
        f"vf-copy-{unique}", endpoint_url=moto_endpoint, path_style=True, copy_part_size=5 * MiB
    )
    await s3.ensure_bucket()
    body = os.urandom(11 * MiB)
    await s3.put_bytes("copy/big", body, content_type="video/mp4", metadata={"who": "me"})
    info = await s3.head("copy/big")
    assert info is not None
    await s3.copy("copy/big", "copy/big-final", if_match=info.etag)
    copied = await s3.head("copy/big-final")
    assert copied is not None
    assert copied.etag is not None
    assert copied.etag.endswith("-3")  # copied in three parts
    assert (copied.size, copied.content_type, copied.metadata) == (
        len(body),
        "video/mp4",
        {"who": "me"},
    )
    assert await s3.get_bytes("copy/big-final") == body

    await s3.put_bytes("copy/big", body[::-1], content_type="video/mp4")
    with pytest.raises(ObjectChanged):
        await s3.copy("copy/big", "copy/other", if_match=info.etag)
    assert await s3.head("copy/other") is None


async def test_presigned_get_with_download_name_and_type(s3: S3Storage) -> None:
    url = await s3.presign_get(
        "uploads/u/original",
        expires_in=300,
        download_name="holiday.mp4",
        content_type="video/mp4",
    )
    query = _query(url)
    assert urlsplit(url).path == f"/{s3.bucket}/uploads/u/original"
    assert query["X-Amz-Expires"] == "300"
    assert query["response-content-disposition"].startswith('attachment; filename="holiday.mp4"')
    assert query["response-content-type"] == "video/mp4"

    plain = _query(await s3.presign_get("uploads/u/original", expires_in=30))
    assert "response-content-disposition" not in plain


async def test_presigned_post_policy(s3: S3Storage) -> None:
    before = datetime.now(UTC)
    post = await s3.presign_post(
        "uploads/u/abc/original", expires_in=600, content_type="video/mp4", max_bytes=50_000
    )
    assert post.fields["key"] == "uploads/u/abc/original"
    assert post.fields["Content-Type"] == "video/mp4"
    policy = json.loads(base64.b64decode(post.fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 50_000] in conditions
    assert {"key": "uploads/u/abc/original"} in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert {"bucket": s3.bucket} in conditions
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((expiration - before).total_seconds() - 600) < 5


async def test_public_endpoint_signs_for_the_browser_host(moto_endpoint: str, unique: str) -> None:
    store = S3Storage(
        f"vf-pub-{unique}",
        endpoint_url=moto_endpoint,
        public_endpoint_url="https://media.example.test",
        path_style=True,
    )
    await store.ensure_bucket()
    await store.put_bytes("a/b", b"data")  # operations use the internal endpoint
    url = await store.presign_get("a/b", expires_in=60)
    assert url.startswith(f"https://media.example.test/vf-pub-{unique}/a/b?")
    part = await store.presign_part("a/b", "upload-1", 3, expires_in=60)
    assert urlsplit(part).netloc == "media.example.test"
    assert _query(part)["partNumber"] == "3"


async def test_unreachable_endpoint_is_a_storage_error(unique: str) -> None:
    from socket import socket

    with socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3Storage(f"vf-{unique}", endpoint_url=f"http://127.0.0.1:{port}", path_style=True)
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        await store.check()
    assert not isinstance(info.value, ObjectNotFound)
    with pytest.raises(StorageError):
        await store.put_bytes("k", b"x")
    assert time.monotonic() - start < 60


async def test_missing_bucket_fails_check(moto_endpoint: str, unique: str) -> None:
    store = S3Storage(f"vf-none-{unique}", endpoint_url=moto_endpoint, path_style=True)
    with pytest.raises(StorageError, match="does not exist"):
        await store.check()
    with pytest.raises(StorageError):
        await store.put_bytes("k", b"x")


async def test_ensure_bucket_creates_with_cors(moto_endpoint: str, unique: str) -> None:
    bucket = f"vf-cors-{unique}"
    store = S3Storage(bucket, endpoint_url=moto_endpoint, path_style=True)
    await store.ensure_bucket(cors_origins=["http://localhost:3000"])
    await store.ensure_bucket(cors_origins=["http://localhost:3000"])  # idempotent
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    rules = client.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["http://localhost:3000"]
    assert set(rules[0]["AllowedMethods"]) == {"GET", "HEAD", "PUT", "POST"}
    assert "ETag" in rules[0]["ExposeHeaders"]
    await store.check()


async def test_build_storage_chooses_by_configuration(tmp_path: Path, moto_endpoint: str) -> None:
    local = build_storage(load_settings(VIDEOFORGE_DATA_DIR=str(tmp_path)))
    assert isinstance(local, LocalStorage)
    assert local.root == (tmp_path / "objects").resolve()

    remote = build_storage(
        load_settings(
            S3_BUCKET_NAME="media",
            AWS_ENDPOINT_URL=moto_endpoint,
            S3_PATH_STYLE="true",
            S3_PUBLIC_ENDPOINT_URL="https://cdn.example.test",
        )
    )
    assert isinstance(remote, S3Storage)
    assert remote.bucket == "media"
    assert remote.client.meta.endpoint_url == moto_endpoint
    assert remote.presign_client.meta.endpoint_url == "https://cdn.example.test"
