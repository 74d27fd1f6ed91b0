"""The Storage contract, run against both backends (local directory and S3 on moto).

Every behaviour the rest of the platform relies on is exercised the same way on both:
bytes and files, ranges, streaming, head/delete/list, multipart through presigned part
URLs actually uploaded over HTTP, and presigned PUT / POST / GET used with httpx.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from videoforge.infra.storage.base import (
    CompletedPart,
    InvalidKey,
    InvalidRange,
    InvalidUpload,
    ObjectChanged,
    ObjectNotFound,
    Storage,
    StorageError,
)

MiB = 1024 * 1024
#: The ``harness`` fixture (conftest.py): ``.kind``, ``.store`` and ``.http``.
Harness = Any


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


async def test_both_backends_satisfy_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.store, Storage)


async def test_put_and_get_bytes_with_type_and_metadata(harness: Harness) -> None:
    store = harness.store
    data = b"hello, storage" * 10
    await store.put_bytes(
        "videos/a/original",
        data,
        content_type="video/mp4",
        metadata={"Owner": "user-1", "upload-id": "abc"},
    )

    assert await store.get_bytes("videos/a/original") == data
    info = await store.head("videos/a/original")
    assert info is not None
    assert info.key == "videos/a/original"
    assert info.size == len(data)
    assert info.content_type == "video/mp4"
    assert info.etag == md5(data)
    assert info.metadata == {"owner": "user-1", "upload-id": "abc"}
    assert info.last_modified is not None

    # Overwriting replaces bytes and metadata together.
    await store.put_bytes("videos/a/original", b"v2", content_type="text/plain")
    info = await store.head("videos/a/original")
    assert info is not None
    assert (info.size, info.content_type, info.metadata) == (2, "text/plain", {})
    assert await store.get_bytes("videos/a/original") == b"v2"


async def test_ranged_get(harness: Harness) -> None:
    store = harness.store
    data = bytes(range(256))
    await store.put_bytes("r/blob", data)

    assert await store.get_bytes("r/blob", start=10, end=19) == data[10:20]
    assert await store.get_bytes("r/blob", start=250) == data[250:]
    assert await store.get_bytes("r/blob", end=3) == data[:4]
    assert await store.get_bytes("r/blob", start=200, end=10_000) == data[200:]
    with pytest.raises(InvalidRange):
        await store.get_bytes("r/blob", start=256)
    with pytest.raises(ValueError, match="after its end"):
        await store.get_bytes("r/blob", start=5, end=4)


async def test_missing_objects(harness: Harness, tmp_path: Path) -> None:
    store = harness.store
    assert await store.head("nope/missing") is None
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("nope/missing")
    with pytest.raises(ObjectNotFound):
        await store.get_file("nope/missing", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    with pytest.raises(ObjectNotFound):
        async for _ in store.iter_bytes("nope/missing"):
            pass


async def test_put_file_get_file_roundtrip(harness: Harness, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    data = os.urandom(300_000)
    source.write_bytes(data)
    await harness.store.put_file("files/in.bin", source, content_type="application/x-test")

    target = tmp_path / "deep" / "out.bin"
    await harness.store.get_file("files/in.bin", target)
    assert target.read_bytes() == data
    info = await harness.store.head("files/in.bin")
    assert info is not None
    assert info.content_type == "application/x-test"


async def test_streaming_iter_bytes(harness: Harness) -> None:
    data = os.urandom(100_000)
    await harness.store.put_bytes("s/stream", data)
    chunks = [c async for c in harness.store.iter_bytes("s/stream", chunk_size=16_384)]
    assert len(chunks) > 1
    assert all(len(c) <= 16_384 for c in chunks)
    assert b"".join(chunks) == data


async def test_delete_is_idempotent(harness: Harness) -> None:
    store = harness.store
    await store.put_bytes("d/one", b"1")
    await store.delete("d/one")
    assert await store.head("d/one") is None
    await store.delete("d/one")  # again: not an error
    await store.delete("d/never-existed")


async def test_a_key_and_its_children_coexist(harness: Harness) -> None:
    store = harness.store
    await store.put_bytes("tree/a", b"parent")
    await store.put_bytes("tree/a/b", b"child")
    assert await store.get_bytes("tree/a") == b"parent"
    assert await store.get_bytes("tree/a/b") == b"child"
    await store.delete("tree/a")
    assert await store.get_bytes("tree/a/b") == b"child"


async def test_list_by_prefix_across_pages(harness: Harness) -> None:
    store = harness.store
    keys = [f"list/job-1/seg-{i:03d}.ts" for i in range(20)]
    for key in keys:
        await store.put_bytes(key, key.encode())
    await store.put_bytes("list/job-10/other", b"x")
    await store.put_bytes("list/job-2/other", b"x")

    # S3 is configured with 7 keys per page, so this spans three pages.
    listed = [info async for info in store.list("list/job-1/")]
    assert [i.key for i in listed] == keys
    assert all(i.size == len(i.key) for i in listed)
    assert all(i.etag == md5(i.key.encode()) for i in listed)

    # A prefix is a string prefix, not a directory: job-1 matches job-10 too.
    loose = [info.key async for info in store.list("list/job-1")]
    assert loose == [*keys, "list/job-10/other"]
    assert [i.key async for i in store.list("list/none/")] == []
    everything = [i.key async for i in store.list("")]
    assert len(everything) == 22
    assert everything == sorted(everything)


async def test_delete_prefix(harness: Harness) -> None:
    store = harness.store
    for i in range(12):
        await store.put_bytes(f"out/job-7/hls/{i}.ts", b"x")
    await store.put_bytes("out/job-7/thumb.jpg", b"x")
    await store.put_bytes("out/job-70/keep", b"x")

    assert await store.delete_prefix("out/job-7/") == 13
    assert [i.key async for i in store.list("out/")] == ["out/job-70/keep"]
    assert await store.delete_prefix("out/job-7/") == 0
    with pytest.raises(InvalidKey):
        await store.delete_prefix("")


@pytest.mark.parametrize(
    "key",
    ["../../x", "..\\x", "a/../../b", "a\x00b", "x" * 1025, "\u202egnp.exe", "/abs", "a//b", ""],
)
async def test_invalid_keys_refused_by_both(harness: Harness, key: str) -> None:
    with pytest.raises(InvalidKey):
        await harness.store.put_bytes(key, b"evil")
    with pytest.raises(InvalidKey):
        await harness.store.presign_get(key, expires_in=60)
    with pytest.raises(InvalidKey):
        await harness.store.presign_put(key, expires_in=60, content_type="video/mp4")


async def test_large_put_file_uses_multipart(harness: Harness, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(11 * MiB)
    source.write_bytes(data)
    await harness.store.put_file("big/source.mp4", source, content_type="video/mp4")

    info = await harness.store.head("big/source.mp4")
    assert info is not None
    assert info.size == len(data)
    if harness.kind == "s3":
        # A multipart ETag is md5(part md5s)-N: 11 MiB in 5 MiB chunks is three parts.
        assert info.etag is not None
        assert info.etag.endswith("-3")
    else:
        assert info.etag == md5(data)
    target = tmp_path / "back.bin"
    await harness.store.get_file("big/source.mp4", target)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_multipart_upload_through_presigned_part_urls(harness: Harness) -> None:
    store = harness.store
    key = "uploads/u1/big.mp4"
    part1, part2 = os.urandom(5 * MiB), os.urandom(1000)
    upload_id = await store.create_multipart(key, content_type="video/mp4")

    uploads = await store.list_multipart_uploads("uploads/u1/")
    assert [(k, u) for k, u, _ in uploads] == [(key, upload_id)]

    parts = []
    # Upload out of order: completion sorts by part number.
    for number, body in ((2, part2), (1, part1)):
        url = await store.presign_part(key, upload_id, number, expires_in=600)
        response = await harness.http.put(url, content=body)
        assert response.status_code == 200, response.text
        etag = response.headers["etag"]
        assert etag.strip('"') == md5(body)
        parts.append(CompletedPart(part_number=number, etag=etag))

    await store.complete_multipart(key, upload_id, parts)
    assert await store.get_bytes(key) == part1 + part2
    info = await store.head(key)
    assert info is not None
    assert info.content_type == "video/mp4"
    expected = md5(bytes.fromhex(md5(part1)) + bytes.fromhex(md5(part2)))
    assert info.etag == f"{expected}-2"
    assert await store.list_multipart_uploads("uploads/u1/") == []


async def test_multipart_wrong_etag_is_refused(harness: Harness) -> None:
    store = harness.store
    key = "uploads/u2/x.mp4"
    upload_id = await store.create_multipart(key, content_type="video/mp4")
    url = await store.presign_part(key, upload_id, 1, expires_in=600)
    assert (await harness.http.put(url, content=b"abc")).status_code == 200
    with pytest.raises(InvalidUpload):
        await store.complete_multipart(key, upload_id, [CompletedPart(1, md5(b"other"))])
    assert await store.head(key) is None
    await store.abort_multipart(key, upload_id)


async def test_multipart_small_middle_part_is_refused(harness: Harness) -> None:
    store = harness.store
    key = "uploads/u6/x.mp4"
    upload_id = await store.create_multipart(key, content_type="video/mp4")
    parts = []
    for number in (1, 2):
        url = await store.presign_part(key, upload_id, number, expires_in=600)
        response = await harness.http.put(url, content=b"tiny")
        parts.append(CompletedPart(number, response.headers["etag"]))
    with pytest.raises(InvalidUpload):
        await store.complete_multipart(key, upload_id, parts)
    assert await store.head(key) is None
    await store.abort_multipart(key, upload_id)


async def test_multipart_parts_of_another_size_than_planned_are_refused(
    harness: Harness,
) -> None:
    store = harness.store
    key = "uploads/u7/x.mp4"
    upload_id = await store.create_multipart(key, content_type="video/mp4")
    bodies = {1: os.urandom(5 * MiB + 10), 2: os.urandom(100)}
    parts = []
    for number, body in bodies.items():
        # Unsigned lengths: the store takes whatever comes (as a client could on moto).
        url = await store.presign_part(key, upload_id, number, expires_in=600)
        response = await harness.http.put(url, content=body)
        assert response.status_code == 200, response.text
        parts.append(CompletedPart(number, response.headers["etag"], size=len(body)))

    planned = [CompletedPart(p.part_number, p.etag, size=5 * MiB) for p in parts[:1]]
    with pytest.raises(InvalidUpload, match="part 1"):
        await store.complete_multipart(key, upload_id, [*planned, parts[1]])
    with pytest.raises(InvalidUpload):
        await store.complete_multipart(
            key, upload_id, [parts[0], CompletedPart(2, parts[1].etag, 99)]
        )
    assert await store.head(key) is None

    await store.complete_multipart(key, upload_id, parts)
    assert await store.get_bytes(key) == bodies[1] + bodies[2]


async def test_copy_is_conditional_on_the_etag(harness: Harness) -> None:
    store = harness.store
    body = os.urandom(3000)
    await store.put_bytes("copy/src", body, content_type="video/mp4", metadata={"who": "me"})
    info = await store.head("copy/src")
    assert info is not None
    assert info.etag is not None

    await store.copy("copy/src", "copy/dst", if_match=f'"{info.etag}"')
    copied = await store.head("copy/dst")
    assert copied is not None
    assert (copied.size, copied.content_type, copied.metadata) == (3000, "video/mp4", {"who": "me"})
    assert await store.get_bytes("copy/dst") == body

    # The source replaced afterwards: the copy keeps the bytes it was made of, and a
    # copy conditional on the old ETag is refused without touching the destination.
    await store.put_bytes("copy/src", b"replaced", content_type="text/html")
    assert await store.get_bytes("copy/dst") == body
    with pytest.raises(ObjectChanged):
        await store.copy("copy/src", "copy/other", if_match=info.etag)
    assert await store.head("copy/other") is None
    with pytest.raises(ObjectNotFound):
        await store.copy("copy/missing", "copy/other")
    with pytest.raises(InvalidKey):
        await store.copy("copy/src", "../escape")


async def test_copy_of_a_multipart_object(harness: Harness) -> None:
    store = harness.store
    key = "copy/mp"
    upload_id = await store.create_multipart(key, content_type="video/mp4")
    bodies = [os.urandom(5 * MiB), os.urandom(1234)]
    parts = []
    for number, body in enumerate(bodies, start=1):
        url = await store.presign_part(
            key, upload_id, number, expires_in=600, content_length=len(body)
        )
        response = await harness.http.put(url, content=body)
        assert response.status_code == 200, response.text
        parts.append(CompletedPart(number, response.headers["etag"], size=len(body)))
    await store.complete_multipart(key, upload_id, parts)
    info = await store.head(key)
    assert info is not None
    await store.copy(key, "copy/mp-final", if_match=info.etag)
    copied = await store.head("copy/mp-final")
    assert copied is not None
    assert (copied.size, copied.content_type) == (info.size, "video/mp4")
    assert await store.get_bytes("copy/mp-final") == b"".join(bodies)


async def test_multipart_abort(harness: Harness) -> None:
    store = harness.store
    key = "uploads/u3/x.mp4"
    upload_id = await store.create_multipart(key, content_type="video/mp4")
    url = await store.presign_part(key, upload_id, 1, expires_in=600)
    response = await harness.http.put(url, content=b"part")
    assert response.status_code == 200

    await store.abort_multipart(key, upload_id)
    assert await store.list_multipart_uploads("uploads/u3/") == []
    # S3 answers NoSuchUpload (-> ObjectNotFound); moto 5.2 crashes with a 500 instead,
    # which our mapping turns into the transient StorageError.
    expected = ObjectNotFound if harness.kind == "local" else StorageError
    with pytest.raises(expected):
        await store.complete_multipart(key, upload_id, [CompletedPart(1, response.headers["etag"])])
    await store.abort_multipart(key, upload_id)  # twice: fine
    assert await store.head(key) is None


async def test_presigned_put_upload(harness: Harness) -> None:
    store = harness.store
    body = os.urandom(4096)
    url = await store.presign_put(
        "uploads/u4/clip.mp4", expires_in=300, content_type="video/mp4", content_length=len(body)
    )
    response = await harness.http.put(url, content=body, headers={"Content-Type": "video/mp4"})
    assert response.status_code == 200, response.text
    assert response.headers["etag"].strip('"') == md5(body)
    info = await store.head("uploads/u4/clip.mp4")
    assert info is not None
    assert (info.size, info.content_type) == (len(body), "video/mp4")
    assert await store.get_bytes("uploads/u4/clip.mp4") == body


async def test_presigned_post_upload(harness: Harness) -> None:
    store = harness.store
    body = os.urandom(2048)
    post = await store.presign_post(
        "uploads/u5/clip.webm", expires_in=300, content_type="video/webm", max_bytes=10_000
    )
    response = await harness.http.post(
        post.url, data=post.fields, files={"file": ("clip.webm", body, "video/webm")}
    )
    assert response.status_code in (200, 201, 204), response.text
    info = await store.head("uploads/u5/clip.webm")
    assert info is not None
    assert (info.size, info.content_type) == (len(body), "video/webm")
    assert await store.get_bytes("uploads/u5/clip.webm") == body


async def test_presigned_get_download(harness: Harness) -> None:
    store = harness.store
    body = b"#EXTM3U\n#EXT-X-VERSION:3\n"
    await store.put_bytes("out/j/master.m3u8", body, content_type="application/vnd.apple.mpegurl")

    url = await store.presign_get("out/j/master.m3u8", expires_in=120)
    response = await harness.http.get(url)
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"

    # Players fetch segments with Range too.
    ranged = await harness.http.get(url, headers={"Range": "bytes=1-6"})
    assert ranged.status_code == 206
    assert ranged.content == body[1:7]

    named = await store.presign_get(
        "out/j/master.m3u8",
        expires_in=120,
        download_name="My Vidéo.m3u8",
        content_type="text/plain",
    )
    response = await harness.http.get(named)
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''My%20Vid%C3%A9o.m3u8" in disposition
    assert response.headers["content-type"].startswith("text/plain")


async def test_check_passes_on_a_reachable_store(harness: Harness) -> None:
    await harness.store.check()
