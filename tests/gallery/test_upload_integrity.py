"""Uploads hold to what was declared, on the local store and on S3 (moto on loopback):
part URLs carry their length, complete needs every planned part, confirm needs the
declared size, a second complete is a 409, and no upload URL can replace a confirmed
original. Real bytes go to the presigned URLs; moto does not check signatures, so on S3
what is signed is asserted from the URL and the size checks that do not depend on the
signature are exercised for real."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from sqlalchemy import select

from videoforge.gallery import confirm, deletions, publishing
from videoforge.gallery.models import GalleryPendingDeletion, GalleryUpload, UploadState
from videoforge.gallery.schemas import UploadConfirm
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.errors import AppError
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.keys import final_key
from videoforge.infra.storage.local.store import LocalStorage

from .conftest import SeedVideo, Users

MiB = 1024 * 1024
PART = 16 * MiB


@pytest.fixture(params=["local", "s3"])
def settings_extra(request: pytest.FixtureRequest, unique: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "UPLOAD_MULTIPART_THRESHOLD": 1 * MiB,
        "UPLOAD_PART_SIZE": PART,
        "UPLOAD_MAX_BYTES": 64 * MiB,
    }
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"vf-integrity-{unique}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=bucket
        )
        extra |= {"S3_BUCKET_NAME": bucket, "AWS_ENDPOINT_URL": endpoint, "S3_PATH_STYLE": True}
    return extra


def _is_s3(infra: Infra) -> bool:
    return not isinstance(infra.storage, LocalStorage)


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Relative URLs (the local store) go to the app; absolute ones (S3) over the network."""
    if url.startswith("/"):
        return await client.request(method, url, **kwargs)
    async with httpx.AsyncClient(timeout=60) as outside:
        return await outside.request(method, url, **kwargs)


async def _ticket(client: httpx.AsyncClient, headers: dict[str, str], size: int) -> dict[str, Any]:
    r = await client.post(
        "/api/upload/url",
        json={"filename": "clip.mp4", "content_type": "video/mp4", "size": size},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _signed_length(infra: Infra, url: str) -> int | None:
    """The length a part URL allows: the local store's signed ``len``; on S3 the
    ``Content-Length`` header must be among the signed ones (its value travels in the
    request, where S3 checks it against the signature: see :func:`_s3_signed_for`)."""
    query = _query(url)
    if _is_s3(infra):
        assert "content-length" in query["X-Amz-SignedHeaders"].split(";"), url
        return None
    return int(query["len"])


def _s3_signed_for(infra: Infra, url: str, length: int) -> bool:
    """Whether S3 would take a PUT to this presigned URL with ``Content-Length: length``:
    the SigV4 signature recomputed with botocore's signer for that header (moto itself
    checks no signatures)."""
    split = urlsplit(url)
    query = parse_qsl(split.query, keep_blank_values=True)
    fields = dict(query)
    unsigned = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    # The store's own credentials (botocore keeps them on the client's signer).
    credentials = infra.storage.presign_client._request_signer._credentials  # type: ignore[attr-defined]
    auth = S3SigV4QueryAuth(
        credentials,
        "s3",
        fields["X-Amz-Credential"].split("/")[2],
        expires=int(fields["X-Amz-Expires"]),
    )
    request = AWSRequest(
        method="PUT",
        url=urlunsplit(split._replace(query=urlencode(unsigned, quote_via=quote))),
        headers={"Content-Length": str(length)},
    )
    request.context["timestamp"] = fields["X-Amz-Date"]
    signature = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    return bool(signature == fields["X-Amz-Signature"])


def _video_bytes(tiny_mp4: bytes, size: int) -> bytes:
    return tiny_mp4 + b"\0" * (size - len(tiny_mp4))


async def _put_parts(
    client: httpx.AsyncClient, ticket: dict[str, Any], data: bytes, numbers: list[int]
) -> list[dict[str, Any]]:
    multipart = ticket["multipart"]
    urls = {p["part_number"]: p["url"] for p in multipart["parts"]}
    size = multipart["part_size"]
    done = []
    for n in numbers:
        chunk = data[(n - 1) * size : n * size]
        r = await _send(client, "PUT", urls[n], content=chunk)
        assert r.status_code == 200, r.text
        done.append({"part_number": n, "etag": r.headers["etag"]})
    return done


async def _complete(
    client: httpx.AsyncClient, users: Users, ticket: dict[str, Any], parts: list[dict[str, Any]]
) -> httpx.Response:
    body = {"key": ticket["key"], "upload_id": ticket["multipart"]["upload_id"], "parts": parts}
    return await client.post("/api/upload/multipart/complete", json=body, headers=users.owner)


async def _pending(infra: Infra) -> list[GalleryPendingDeletion]:
    async with infra.sessions() as session:
        rows = await session.execute(
            select(GalleryPendingDeletion).order_by(GalleryPendingDeletion.id)
        )
        return list(rows.scalars())


async def _state(infra: Infra, key: str) -> UploadState:
    async with infra.sessions() as session:
        row = await session.get(GalleryUpload, key)
    assert row is not None
    return row.state


# ------------------------------------------------------------------ part lengths
async def test_part_urls_carry_their_planned_length(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    size = 40 * MiB
    ticket = await _ticket(client, users.owner, size)
    parts = ticket["multipart"]["parts"]
    assert ticket["multipart"]["part_size"] == PART
    lengths = [_signed_length(infra, p["url"]) for p in parts]
    planned = [PART, PART, size - 2 * PART]
    if _is_s3(infra):
        for part, length in zip(parts, planned, strict=True):
            assert _s3_signed_for(infra, part["url"], length)
            assert not _s3_signed_for(infra, part["url"], size)
            assert not _s3_signed_for(infra, part["url"], length + 1)
    else:
        assert lengths == planned

    # Resumed URLs carry the same lengths.
    r = await client.post(
        "/api/upload/multipart/parts",
        json={
            "key": ticket["key"],
            "upload_id": ticket["multipart"]["upload_id"],
            "part_numbers": [3, 1],
        },
        headers=users.owner,
    )
    assert r.status_code == 200, r.text
    resigned = {p["part_number"]: _signed_length(infra, p["url"]) for p in r.json()["parts"]}
    if _is_s3(infra):
        urls = {p["part_number"]: p["url"] for p in r.json()["parts"]}
        assert _s3_signed_for(infra, urls[1], PART)
        assert _s3_signed_for(infra, urls[3], size - 2 * PART)
        assert not _s3_signed_for(infra, urls[3], PART)
    else:
        assert resigned == {1: PART, 3: size - 2 * PART}


async def test_40_mib_into_a_16_mib_part_is_refused(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    size = 40 * MiB
    data = _video_bytes(tiny_mp4, size)
    ticket = await _ticket(client, users.owner, size)
    first = ticket["multipart"]["parts"][0]["url"]

    if not _is_s3(infra):
        assert isinstance(infra.storage, LocalStorage)
        r = await _send(client, "PUT", first, content=data)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "content_length_mismatch"

        # Without a Content-Length the body is cut the moment it passes the part.
        async def body() -> AsyncIterator[bytes]:
            for offset in range(0, size, MiB):
                yield data[offset : offset + MiB]

        r = await client.put(first, content=body())
        assert r.status_code == 413, r.text
        upload_dir = infra.storage.root / "~multipart" / ticket["multipart"]["upload_id"]
        assert sorted(p.name for p in upload_dir.iterdir()) == ["upload.json"]
        tmp = infra.storage.root / "~tmp"
        assert not tmp.exists() or list(tmp.iterdir()) == []
        return

    # moto takes any body (S3 itself refuses it: Content-Length is signed, see above);
    # whatever got in, complete refuses a part that is not its planned length.
    _signed_length(infra, first)
    r = await _send(client, "PUT", first, content=data)
    assert r.status_code == 200
    parts = [{"part_number": 1, "etag": r.headers["etag"]}]
    parts += await _put_parts(client, ticket, data, [2, 3])
    r = await _complete(client, users, ticket, parts)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_upload"
    assert await infra.storage.head(ticket["key"]) is None


# --------------------------------------------------------------------- complete
async def test_complete_needs_every_planned_part(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    size = PART + 3 * MiB
    data = _video_bytes(tiny_mp4, size)
    ticket = await _ticket(client, users.owner, size)
    assert len(ticket["multipart"]["parts"]) == 2
    parts = await _put_parts(client, ticket, data, [1])

    r = await _complete(client, users, ticket, parts)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "upload_incomplete"
    assert "2" in r.json()["error"]["message"]
    assert await infra.storage.head(ticket["key"]) is None

    # A part number past the plan is refused too.
    r = await _complete(client, users, ticket, [*parts, {"part_number": 3, "etag": "x"}])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_part_number"

    # With the missing part sent, the same upload completes and confirms.
    parts += await _put_parts(client, ticket, data, [2])
    assert (await _complete(client, users, ticket, parts)).status_code == 204
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 201, r.text
    assert r.json()["file_size"] == size


async def test_second_complete_is_a_clear_409(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    size = PART + MiB
    data = _video_bytes(tiny_mp4, size)
    ticket = await _ticket(client, users.owner, size)
    parts = await _put_parts(client, ticket, data, [1, 2])
    assert (await _complete(client, users, ticket, parts)).status_code == 204

    again = await _complete(client, users, ticket, parts)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "upload_already_completed"

    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 201, r.text
    original = r.json()["s3_key"]
    after_confirm = await _complete(client, users, ticket, parts)
    assert after_confirm.status_code == 409
    assert after_confirm.json()["error"]["code"] == "upload_already_completed"

    # A part URL replayed after confirm reaches no upload, and the original is intact.
    last = ticket["multipart"]["parts"][1]["url"]
    replay = await _send(client, "PUT", last, content=b"\xff" * MiB)
    # S3 answers NoSuchUpload (moto 5 crashes with a 500 instead).
    assert replay.status_code in ((404, 500) if _is_s3(infra) else (404,)), replay.text
    info = await infra.storage.head(original)
    assert info is not None
    assert info.size == size
    assert await infra.storage.get_bytes(original) == data


# ---------------------------------------------------------------------- confirm
async def test_short_object_at_confirm_is_rejected_and_deleted_through_the_outbox(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, len(tiny_mp4) + 1000)
    single = ticket["single"]
    r = await _send(
        client,
        "POST",
        single["url"],
        data=single["fields"],
        files={"file": ("clip.mp4", tiny_mp4, "video/mp4")},
    )
    assert r.status_code in (200, 201, 204), r.text
    assert await infra.storage.head(ticket["key"]) is not None

    # The service call alone: the state is committed with the delete recorded in the
    # outbox, and the bytes are still there until the caller carries it out.
    principal = Principal(user_id=users.owner_id)
    outcome = await confirm.confirm_upload(
        infra.sessions, infra.storage, infra.settings, principal, UploadConfirm(key=ticket["key"])
    )
    assert isinstance(outcome, confirm.Rejected)
    assert outcome.error.status_code == 400
    assert outcome.error.code == "upload_size_mismatch"
    assert str(len(tiny_mp4)) in outcome.error.message
    assert await _state(infra, ticket["key"]) is UploadState.REJECTED
    rows = await _pending(infra)
    assert [(row.id, row.target, row.reason) for row in rows] == [
        (outcome.pending[0], ticket["key"], "upload_rejected")
    ]
    assert await infra.storage.head(ticket["key"]) is not None
    assert await deletions.carry_out(infra.sessions, infra.storage, outcome.pending) == 1
    assert await infra.storage.head(ticket["key"]) is None
    assert await _pending(infra) == []


async def test_short_object_is_refused_over_http(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, len(tiny_mp4) + 1)
    await infra.storage.put_bytes(ticket["key"], tiny_mp4, content_type="video/mp4")
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "upload_size_mismatch"
    assert await infra.storage.head(ticket["key"]) is None
    assert await _pending(infra) == []
    listed = await client.get("/api/gallery/videos", params={"owner": "me"}, headers=users.owner)
    assert listed.json()["items"] == []
    # The session is closed.
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 404


# ---------------------------------------------------------------------- replays
async def test_replayed_form_post_after_confirm_cannot_replace_the_original(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    ticket = await _ticket(client, users.owner, len(tiny_mp4))
    single = ticket["single"]

    async def post(data: bytes) -> httpx.Response:
        return await _send(
            client,
            "POST",
            single["url"],
            data=single["fields"],
            files={"file": ("clip.mp4", data, "video/mp4")},
        )

    assert (await post(tiny_mp4)).status_code in (200, 201, 204)
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 201, r.text
    video = r.json()

    # The same signed form, replayed with other bytes of the same size.
    evil = b"<html><script>alert(1)</script></html>".ljust(len(tiny_mp4), b" ")
    replay = await post(evil)
    if _is_s3(infra):
        # A presigned POST cannot be revoked: S3 takes it (into the dead upload key).
        assert replay.status_code in (200, 201, 204), replay.text
    else:
        # The local store refuses it outright, and the dead key stays empty.
        assert replay.status_code == 409, replay.text
        assert replay.json()["error"]["code"] == "upload_closed"
        assert await infra.storage.head(ticket["key"]) is None

    assert video["s3_key"] == final_key(ticket["key"])
    assert await infra.storage.get_bytes(video["s3_key"]) == tiny_mp4
    r = await client.get(f"/api/gallery/videos/{video['id']}", headers=users.owner)
    assert r.json()["s3_key"] == video["s3_key"]
    # Confirming again changes nothing either.
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert (r.status_code, r.json()["id"]) == (200, video["id"])
    assert await infra.storage.get_bytes(video["s3_key"]) == tiny_mp4

    # Whatever a replay left at the upload key is deleted once the URLs have expired.
    rows = [row for row in await _pending(infra) if row.reason == "upload_replay"]
    assert [row.target for row in rows] == [ticket["key"]]
    after = utcnow() + timedelta(seconds=infra.settings.upload_url_ttl) + confirm.REPLAY_GRACE
    # Scheduled for later, it is not a delete that storage failed: the operator's gauge
    # of pending deletes stays at 0 until its time.
    assert await deletions.pending_count(infra.sessions) == 0
    assert await deletions.pending_count(infra.sessions, now=after + timedelta(minutes=1)) == 1
    assert await deletions.sweep_deletions(infra, now=after + timedelta(minutes=1)) == 1
    assert await infra.storage.head(ticket["key"]) is None
    assert await infra.storage.get_bytes(video["s3_key"]) == tiny_mp4


async def test_the_outbox_never_deletes_the_original_of_an_existing_video(
    infra: Infra, users: Users, seed_video: SeedVideo
) -> None:
    # A stale clean-up row (a confirm that copied and failed to commit, then a later
    # confirm of the same upload that succeeded) names a key a video now owns.
    original = f"originals/{users.owner_id}/abc/original"
    await seed_video(users.owner_id, s3_key=original)
    await infra.storage.put_bytes(original, b"the original", content_type="video/mp4")
    async with session_scope(infra.sessions) as session:
        ids = await deletions.schedule(session, reason="upload_copy_unconfirmed", keys=[original])
    assert await deletions.carry_out(infra.sessions, infra.storage, ids) == 1
    assert await infra.storage.get_bytes(original) == b"the original"
    assert await _pending(infra) == []


async def test_an_upload_changed_during_confirm_is_not_confirmed(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    # The steps of a confirm one by one, with the upload key replaced in between (a
    # replayed URL racing the confirm).
    ticket = await _ticket(client, users.owner, len(tiny_mp4))
    key = ticket["key"]
    principal = Principal(user_id=users.owner_id)
    body = UploadConfirm(key=key)
    page = b"<html><script>alert(1)</script></html>".ljust(len(tiny_mp4), b" ")

    async def checked() -> Any:
        async with session_scope(infra.sessions) as session:
            return await confirm._check_upload(
                session, infra.storage, infra.settings, principal, body
            )

    async def claim(step: Any) -> None:
        async with session_scope(infra.sessions) as session:
            await confirm._claim_and_copy(
                session,
                infra.storage,
                principal,
                body,
                step.upload,
                step.info,
                final_key(key),
                [],
                publishing.initial(None, None),
            )

    # Replaced after the checks: the copy is conditional on the checked ETag.
    await infra.storage.put_bytes(key, tiny_mp4, content_type="video/mp4")
    step = await checked()
    await infra.storage.put_bytes(key, page, content_type="video/mp4")
    with pytest.raises(AppError) as refused:
        await claim(step)
    assert (refused.value.status_code, refused.value.code) == (409, "upload_changed")
    assert await infra.storage.head(final_key(key)) is None

    # Swapped and swapped back around the sniff: the copy is sniffed too.
    step = await checked()
    assert isinstance(step, confirm.Rejected)  # the page itself is refused...
    ticket = await _ticket(client, users.owner, len(tiny_mp4))
    key = ticket["key"]
    body = UploadConfirm(key=key)
    await infra.storage.put_bytes(key, tiny_mp4, content_type="video/mp4")
    step = await checked()
    await infra.storage.put_bytes(key, page, content_type="video/mp4")
    info = await infra.storage.head(key)
    assert info is not None
    # ...but checks that saw the page's ETag with a video's first bytes would pass.
    with pytest.raises(AppError) as refused:
        await claim(dataclasses.replace(step, info=info))
    assert (refused.value.status_code, refused.value.code) == (409, "upload_changed")

    # Either way nothing was confirmed: the session is still open, no video exists.
    assert await _state(infra, key) is UploadState.ISSUED
    listed = await client.get("/api/gallery/videos", params={"owner": "me"}, headers=users.owner)
    assert listed.json()["items"] == []


async def test_an_upload_aborted_after_complete_leaves_no_object(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    size = PART + MiB
    data = _video_bytes(tiny_mp4, size)
    ticket = await _ticket(client, users.owner, size)
    parts = await _put_parts(client, ticket, data, [1, 2])
    assert (await _complete(client, users, ticket, parts)).status_code == 204
    assert await infra.storage.head(ticket["key"]) is not None

    r = await client.post(
        "/api/upload/multipart/abort",
        json={"key": ticket["key"], "upload_id": ticket["multipart"]["upload_id"]},
        headers=users.owner,
    )
    assert r.status_code == 204, r.text
    assert await _state(infra, ticket["key"]) is UploadState.ABORTED
    # The session is no longer swept, so the abort itself removes the assembled file.
    assert await infra.storage.head(ticket["key"]) is None
    assert await _pending(infra) == []
    r = await client.post("/api/upload/confirm", json={"key": ticket["key"]}, headers=users.owner)
    assert r.status_code == 404
