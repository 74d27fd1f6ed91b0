"""The local store's signed URLs, enforced by the real ``/storage`` router.

Requests go through httpx's ASGI transport into a FastAPI app with the shared error
handlers, exactly as the gallery and the embedded app mount it. Every refusal is checked
for its status, its stable code and the one JSON error format — and for leaving nothing
behind on disk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from videoforge.infra.secrets import STORAGE_SIGNING_KEY_ENV as SIGNING_KEY_ENV
from videoforge.infra.secrets import KeyPurpose, derive_key
from videoforge.infra.storage.local.files import KeySealed
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.infra.storage.signing import Grant, Op

KiB = 1024


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def refusal(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert response.headers["access-control-allow-origin"] == "*"


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


def temp_files(store: LocalStorage) -> list[Path]:
    tmp = store.root / "~tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


async def chunks(count: int, size: int, consumed: list[int]) -> AsyncIterator[bytes]:
    for _ in range(count):
        consumed.append(1)
        yield b"x" * size


# ----------------------------------------------------------------- GET / HEAD
async def test_get_serves_bytes_with_safe_headers(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    body = b"<html>not really a video</html>"
    await local_store.put_bytes("uploads/u/original", body, content_type="video/mp4")
    url = await local_store.presign_get(
        "uploads/u/original", expires_in=300, download_name='evil"name.html'
    )
    assert url.startswith("/storage/o/uploads/u/original?")

    response = await local_client.get(url)
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"evil_name.html\"; filename*=UTF-8''evil%22name.html"
    )
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
    cache = response.headers["cache-control"]
    assert cache.startswith("private, max-age=")
    assert 0 < int(cache.rsplit("=", 1)[1]) <= 300
    assert "ETag" in response.headers["access-control-expose-headers"]


async def test_range_requests(local_store: LocalStorage, local_client: httpx.AsyncClient) -> None:
    body = bytes(range(200))
    await local_store.put_bytes("hls/seg0.ts", body, content_type="video/mp2t")
    url = await local_store.presign_get("hls/seg0.ts", expires_in=60)

    r = await local_client.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == body[10:20]
    assert r.headers["content-range"] == "bytes 10-19/200"
    assert r.headers["content-length"] == "10"

    r = await local_client.get(url, headers={"Range": "bytes=190-"})
    assert (r.status_code, r.content, r.headers["content-range"]) == (
        206,
        body[190:],
        "bytes 190-199/200",
    )
    r = await local_client.get(url, headers={"Range": "bytes=-5"})
    assert (r.status_code, r.content) == (206, body[195:])
    r = await local_client.get(url, headers={"Range": "bytes=150-10000"})
    assert (r.status_code, r.content) == (206, body[150:])

    # Multiple ranges may be ignored: the whole object, 200.
    r = await local_client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert (r.status_code, r.content) == (200, body)

    r = await local_client.get(url, headers={"Range": "bytes=200-"})
    refusal(r, 416, "range_not_satisfiable")
    assert r.headers["content-range"] == "bytes */200"

    # If-Range with a stale validator: the full object instead of a range.
    r = await local_client.get(url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert (r.status_code, r.content) == (200, body)
    etag = r.headers["etag"]
    r = await local_client.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert (r.status_code, r.content) == (206, body[:4])


async def test_head_and_conditional_get(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    await local_store.put_bytes("hls/index.m3u8", b"#EXTM3U\n", content_type="audio/mpegurl")
    url = await local_store.presign_get("hls/index.m3u8", expires_in=60)

    r = await local_client.head(url)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "8"
    assert r.headers["content-type"] == "audio/mpegurl"
    assert r.headers["accept-ranges"] == "bytes"
    assert "last-modified" in r.headers

    r = await local_client.head(url, headers={"Range": "bytes=1-2"})
    assert (r.status_code, r.headers["content-range"], r.headers["content-length"]) == (
        206,
        "bytes 1-2/8",
        "2",
    )

    etag = (await local_client.get(url)).headers["etag"]
    r = await local_client.get(url, headers={"If-None-Match": etag})
    assert (r.status_code, r.content) == (304, b"")


async def test_missing_object_is_404(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    url = await local_store.presign_get("nothing/here", expires_in=60)
    refusal(await local_client.get(url), 404, "object_not_found")


async def test_router_is_404_when_the_store_is_not_local(
    local_store: LocalStorage, make_app: Any
) -> None:
    app = make_app(SimpleNamespace())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await local_store.put_bytes("k", b"v")
        url = await local_store.presign_get("k", expires_in=60)
        refusal(await c.get(url), 404, "not_found")


async def test_preflight_allows_browser_uploads(local_client: httpx.AsyncClient) -> None:
    r = await local_client.options(
        "/storage/o/uploads/x",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type"


# ------------------------------------------------------------------ refusals
async def test_tampered_signature(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    await local_store.put_bytes("k/v", b"secret")
    url = await local_store.presign_get("k/v", expires_in=60)
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    forged = sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
    refusal(await local_client.get(with_query(url, sig=forged)), 403, "signature_invalid")
    # Extending the expiry or adding a download override breaks the signature too.
    exp = str(int(dict(parse_qsl(urlsplit(url).query))["exp"]) + 3600)
    refusal(await local_client.get(with_query(url, exp=exp)), 403, "signature_invalid")
    refusal(await local_client.get(with_query(url, rct="text/html")), 403, "signature_invalid")
    stripped = urlunsplit(urlsplit(url)._replace(query=""))
    refusal(await local_client.get(stripped), 403, "signature_invalid")


async def test_expired_url(
    local_store: LocalStorage, local_client: httpx.AsyncClient, clock: Any
) -> None:
    await local_store.put_bytes("k/v", b"data")
    url = await local_store.presign_get("k/v", expires_in=30)
    assert (await local_client.get(url)).status_code == 200
    clock.now += 31
    refusal(await local_client.get(url), 403, "url_expired")
    put = await local_store.presign_put("k/new", expires_in=30, content_type="video/mp4")
    clock.now += 31
    r = await local_client.put(put, content=b"x", headers={"Content-Type": "video/mp4"})
    refusal(r, 403, "url_expired")
    assert await local_store.head("k/new") is None


async def test_url_for_another_key(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    await local_store.put_bytes("users/alice/private", b"alice")
    await local_store.put_bytes("users/bob/public", b"bob")
    url = await local_store.presign_get("users/bob/public", expires_in=60)
    other = with_path(url, "/storage/o/users/alice/private")
    refusal(await local_client.get(other), 403, "signature_invalid")

    put = await local_store.presign_put("users/bob/up", expires_in=60, content_type="video/mp4")
    r = await local_client.put(
        with_path(put, "/storage/o/users/alice/private"),
        content=b"overwrite",
        headers={"Content-Type": "video/mp4"},
    )
    refusal(r, 403, "signature_invalid")
    assert await local_store.get_bytes("users/alice/private") == b"alice"


async def test_url_for_another_method(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    await local_store.put_bytes("m/obj", b"original")
    get_url = await local_store.presign_get("m/obj", expires_in=60)
    r = await local_client.put(get_url, content=b"changed", headers={"Content-Type": "video/mp4"})
    refusal(r, 403, "url_method_mismatch")
    assert await local_store.get_bytes("m/obj") == b"original"

    put_url = await local_store.presign_put("m/obj", expires_in=60, content_type="video/mp4")
    refusal(await local_client.get(put_url), 403, "url_method_mismatch")
    head = await local_client.head(put_url)
    assert head.status_code == 403


async def test_put_with_another_content_type(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    url = await local_store.presign_put("ct/x", expires_in=60, content_type="video/mp4")
    for sent in ("text/html", "video/mp4; charset=utf-8", None):
        headers = {"Content-Type": sent} if sent else {}
        r = await local_client.put(url, content=b"<script>", headers=headers)
        refusal(r, 403, "content_type_mismatch")
    assert await local_store.head("ct/x") is None
    assert temp_files(local_store) == []


async def test_put_with_another_signed_length(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    url = await local_store.presign_put(
        "len/x", expires_in=60, content_type="video/mp4", content_length=10
    )
    r = await local_client.put(url, content=b"x" * 11, headers={"Content-Type": "video/mp4"})
    refusal(r, 403, "content_length_mismatch")
    # Without a Content-Length (chunked), the stream itself is cut at the signed length.
    consumed: list[int] = []
    r = await local_client.put(
        url, content=chunks(4, 8, consumed), headers={"Content-Type": "video/mp4"}
    )
    refusal(r, 413, "payload_too_large")
    assert await local_store.head("len/x") is None
    assert temp_files(local_store) == []


async def test_oversized_put_is_cut_while_streaming(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    # The store's limit is 8 MiB; the body would be 64 MiB if it were all read.
    url = await local_store.presign_put("big/x", expires_in=60, content_type="video/mp4")
    consumed: list[int] = []
    r = await local_client.put(
        url, content=chunks(256, 256 * KiB, consumed), headers={"Content-Type": "video/mp4"}
    )
    refusal(r, 413, "payload_too_large")
    assert len(consumed) < 40  # refused just past 8 MiB, long before 256 chunks
    assert await local_store.head("big/x") is None
    assert temp_files(local_store) == []

    # A declared oversized length is refused before reading any of the body.
    consumed.clear()
    r = await local_client.put(
        url,
        content=chunks(1, 1, consumed),
        headers={"Content-Type": "video/mp4", "Content-Length": str(9 * 1024 * KiB)},
    )
    refusal(r, 413, "payload_too_large")
    assert consumed == []


async def test_part_for_unknown_upload(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    upload_id = await local_store.create_multipart("mp/x", content_type="video/mp4")
    url = await local_store.presign_part("mp/x", upload_id, 1, expires_in=60)
    await local_store.abort_multipart("mp/x", upload_id)
    refusal(await local_client.put(url, content=b"part"), 404, "upload_not_found")
    assert temp_files(local_store) == []


async def test_part_with_another_signed_length(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    upload_id = await local_store.create_multipart("mp/len", content_type="video/mp4")
    url = await local_store.presign_part(
        "mp/len", upload_id, 1, expires_in=60, content_length=16 * KiB
    )
    assert dict(parse_qsl(urlsplit(url).query))["len"] == str(16 * KiB)
    part_file = local_store.root / "~multipart" / upload_id / "00001"

    refusal(await local_client.put(url, content=b"x" * 40 * KiB), 403, "content_length_mismatch")
    refusal(await local_client.put(url, content=b"x" * 15 * KiB), 403, "content_length_mismatch")
    consumed: list[int] = []
    r = await local_client.put(url, content=chunks(40, KiB, consumed))
    refusal(r, 413, "payload_too_large")
    assert len(consumed) <= 17
    r = await local_client.put(url, content=chunks(15, KiB, []))
    refusal(r, 400, "incomplete_body")
    assert not part_file.exists()
    assert temp_files(local_store) == []
    # The length is signed: changing it in the URL breaks the signature.
    refusal(
        await local_client.put(with_query(url, len=str(40 * KiB)), content=b"x" * 40 * KiB),
        403,
        "signature_invalid",
    )
    assert not part_file.exists()

    r = await local_client.put(url, content=b"x" * 16 * KiB)
    assert r.status_code == 200, r.text
    assert part_file.stat().st_size == 16 * KiB


@pytest.mark.parametrize("key", ["a/../b", "..\\x", "x\x00y", "k" * 1025, "/abs", "a//b"])
async def test_signed_request_for_an_invalid_key_is_400(
    local_store: LocalStorage, local_client: httpx.AsyncClient, sandbox: Path, key: str
) -> None:
    # Signed with the store's own key (as if presigning had not validated it): the key
    # itself is refused, never handed to the file system, and never a 500.
    before = files_under(sandbox)
    expires = local_store.now() + 60
    path = "/storage/o/" + quote(key, safe="")
    for op, method, content_type in ((Op.GET, "GET", None), (Op.PUT, "PUT", "video/mp4")):
        grant = Grant(op=op, key=key, expires=expires, content_type=content_type)
        query: dict[str, str] = {"op": op.value, "exp": str(expires)}
        if op is Op.PUT:
            query["ct"] = "video/mp4"
        query["sig"] = local_store.signer.sign(grant)
        r = await local_client.request(
            method,
            f"{path}?{urlencode(query)}",
            content=b"evil" if method == "PUT" else None,
            headers={"Content-Type": "video/mp4"},
        )
        refusal(r, 400, "invalid_key")

    post = Grant(op=Op.POST, key=key, expires=expires, content_type="video/mp4", length=100)
    fields = {
        "key": key,
        "Content-Type": "video/mp4",
        "x-vf-expires": str(expires),
        "x-vf-max-bytes": "100",
        "x-vf-signature": local_store.signer.sign(post),
    }
    body = multipart_body(fields, b"evil", "vfboundary")
    r = await local_client.post(
        "/storage/upload",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=vfboundary"},
    )
    refusal(r, 400, "invalid_key")
    assert files_under(sandbox) == before
    assert temp_files(local_store) == []


async def test_a_sealed_key_refuses_signed_writes(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    key = "seal/upload"
    put_url = await local_store.presign_put(key, expires_in=60, content_type="video/mp4")
    post = await local_store.presign_post(
        key, expires_in=60, content_type="video/mp4", max_bytes=100
    )
    await local_store.put_bytes(key, b"first", content_type="video/mp4")

    await local_store.seal(key)
    assert await local_store.head(key) is None
    assert [i.key async for i in local_store.list("seal/")] == []
    r = await local_client.put(put_url, content=b"again", headers={"Content-Type": "video/mp4"})
    refusal(r, 409, "upload_closed")
    body = multipart_body(post.fields, b"again", "vfboundary")
    r = await local_client.post(
        "/storage/upload",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=vfboundary"},
    )
    refusal(r, 409, "upload_closed")
    assert await local_store.head(key) is None
    assert temp_files(local_store) == []

    # A write that began before the seal is refused when it lands.
    pending = local_store.new_pending()
    pending.write(b"late")
    with pytest.raises(KeySealed):
        local_store.commit_pending(key, pending, content_type="video/mp4", unless_sealed=True)
    pending.discard()
    assert await local_store.head(key) is None

    # Deleting the key lifts the seal (its URLs have expired by then).
    await local_store.delete(key)
    r = await local_client.put(put_url, content=b"fresh", headers={"Content-Type": "video/mp4"})
    assert r.status_code == 200, r.text
    assert await local_store.get_bytes(key) == b"fresh"


# ---------------------------------------------------------------- form POST
def multipart_body(fields: dict[str, str], file_bytes: bytes, boundary: str) -> bytes:
    out = b""
    for name, value in fields.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    return out + file_bytes + f"\r\n--{boundary}--\r\n".encode()


async def test_oversized_post_is_cut_while_streaming(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    post = await local_store.presign_post(
        "form/x", expires_in=60, content_type="video/mp4", max_bytes=100 * KiB
    )
    body = multipart_body(post.fields, os.urandom(4 * 1024 * KiB), "XyZbound")
    consumed: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 32 * KiB):
            consumed.append(1)
            yield body[i : i + 32 * KiB]

    r = await local_client.post(
        post.url,
        content=stream(),
        headers={"Content-Type": "multipart/form-data; boundary=XyZbound"},
    )
    refusal(r, 413, "payload_too_large")
    assert len(consumed) < 10  # 128 chunks in the body; cut after ~100 KiB
    assert await local_store.head("form/x") is None
    assert temp_files(local_store) == []

    # The same with a declared Content-Length: refused as soon as the policy is known.
    r = await local_client.post(
        post.url, data=post.fields, files={"file": ("a.mp4", b"x" * (200 * KiB), "video/mp4")}
    )
    refusal(r, 413, "payload_too_large")
    assert await local_store.head("form/x") is None


async def test_post_refusals(
    local_store: LocalStorage, local_client: httpx.AsyncClient, clock: Any
) -> None:
    post = await local_store.presign_post(
        "form/y", expires_in=60, content_type="video/mp4", max_bytes=1000
    )

    async def send(fields: dict[str, str], data: bytes = b"abc") -> httpx.Response:
        return await local_client.post(
            post.url, data=fields, files={"file": ("y.mp4", data, "video/mp4")}
        )

    refusal(await send({**post.fields, "key": "form/other"}), 403, "signature_invalid")
    refusal(await send({**post.fields, "Content-Type": "text/html"}), 403, "signature_invalid")
    refusal(await send({**post.fields, "x-vf-max-bytes": "999999"}), 403, "signature_invalid")
    missing = {k: v for k, v in post.fields.items() if k != "x-vf-signature"}
    refusal(await send(missing), 403, "signature_invalid")
    refusal(await send(post.fields, b""), 400, "entity_too_small")
    no_file = await local_client.post(post.url, data=post.fields, files={"other": ("a", b"b")})
    refusal(no_file, 400, "invalid_form")
    refusal(await local_client.post(post.url, data=post.fields), 400, "invalid_form")
    clock.now += 61
    refusal(await send(post.fields), 403, "url_expired")
    assert await local_store.head("form/y") is None
    assert temp_files(local_store) == []


async def test_post_stores_with_the_signed_type(
    local_store: LocalStorage, local_client: httpx.AsyncClient
) -> None:
    post = await local_store.presign_post(
        "form/z", expires_in=60, content_type="video/quicktime", max_bytes=1000
    )
    # The file part claims text/html; the signed Content-Type field is what is stored.
    r = await local_client.post(
        post.url, data=post.fields, files={"file": ("z.html", b"x" * 1000, "text/html")}
    )
    assert r.status_code == 204, r.text
    info = await local_store.head("form/z")
    assert info is not None
    assert (info.size, info.content_type) == (1000, "video/quicktime")


# ------------------------------------------------------------ keys and disk
HOSTILE_KEYS = [
    "../../x",
    "..\\x",
    "a/../../b",
    "a/./b",
    "x\x00y",
    "x" * 1025,
    "\u202egnp.exe",
    "safe\u200f/name",
    "/etc/passwd",
    "a//b",
    "tail/",
    "",
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """The test's whole temp dir: nothing may appear outside the store's root."""
    return tmp_path


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_hostile_keys_never_touch_the_disk(
    local_store: LocalStorage, local_client: httpx.AsyncClient, sandbox: Path, key: str
) -> None:
    from videoforge.infra.storage.base import InvalidKey, validate_key

    before = files_under(sandbox)
    with pytest.raises(InvalidKey):
        await local_store.put_bytes(key, b"evil")
    with pytest.raises(InvalidKey):
        await local_store.presign_put(key, expires_in=60, content_type="video/mp4")
    with pytest.raises(InvalidKey):
        await local_store.create_multipart(key, content_type="video/mp4")
    # Through HTTP, with a valid signature for another key: refused, nothing written.
    url = await local_store.presign_put("innocent", expires_in=60, content_type="video/mp4")
    raw = "/storage/o/" + "".join(
        c if c.isascii() and c.isalnum() else quote(c, safe="") for c in key[:300]
    )
    r = await local_client.put(
        with_path(url, raw), content=b"evil", headers={"Content-Type": "video/mp4"}
    )
    # A key no store could hold is a malformed request; a valid one (the long key cut
    # to 300 characters) is simply not the signed one.
    try:
        validate_key(unquote(raw.removeprefix("/storage/o/")))
    except InvalidKey:
        refusal(r, 400, "invalid_key")
    else:
        refusal(r, 403, "signature_invalid")
    assert files_under(sandbox) == before
    assert not (sandbox.parent / "x").exists()


async def test_odd_but_valid_keys_stay_under_the_root(
    local_store: LocalStorage, local_client: httpx.AsyncClient, sandbox: Path
) -> None:
    keys = [
        "uploads/u/vidéo ünïcode.mp4",
        "uploads/u/" + "long" * 200,  # 800 bytes in one segment (> NAME_MAX)
        "uploads/u/a b?c#d%e&f=g+h.mp4",
        "uploads/u/..hidden",
        "uploads/u/~o",
        "~tmp/not-the-temp-dir",
    ]
    for i, key in enumerate(keys):
        await local_store.put_bytes(key, str(i).encode(), content_type="video/mp4")
    for path in files_under(sandbox):
        assert path.is_relative_to(local_store.root)
    for i, key in enumerate(keys):
        assert await local_store.get_bytes(key) == str(i).encode()
        url = await local_store.presign_get(key, expires_in=60)
        r = await local_client.get(url)
        assert (r.status_code, r.content) == (200, str(i).encode())
    assert sorted([i.key async for i in local_store.list("")]) == sorted(keys)
    assert await local_store.delete_prefix("uploads/") == 5
    assert [i.key async for i in local_store.list("")] == ["~tmp/not-the-temp-dir"]


# -------------------------------------------------------------- signing keys
async def test_signing_key_is_derived_not_the_jwt_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_app: Any
) -> None:
    from videoforge.settings import load_settings

    secret = "a-jwt-secret-that-is-long-enough-1234"
    derived = derive_key(secret.encode(), KeyPurpose.STORAGE_URLS)
    assert derived != secret.encode()
    assert len(derived) == 32

    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    settings = load_settings(VIDEOFORGE_DATA_DIR=str(tmp_path), JWT_SECRET=secret)
    a = LocalStorage.from_settings(settings)
    monkeypatch.setenv(SIGNING_KEY_ENV, "a-separate-storage-signing-key")
    b = LocalStorage.from_settings(settings)
    url_a = await a.presign_get("k", expires_in=60)
    url_b = await b.presign_get("k", expires_in=60)

    def sig(url: str) -> str:
        return dict(parse_qsl(urlsplit(url).query))["sig"]

    assert sig(url_a) != sig(url_b)

    # A URL signed by one key is refused by a store holding the other.
    await b.put_bytes("k", b"v")
    app = make_app(b)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        refusal(await c.get(url_a), 403, "signature_invalid")
        assert (await c.get(url_b)).status_code == 200


async def test_public_url_prefixes_every_url(tmp_path: Path) -> None:
    store = LocalStorage(
        tmp_path,
        signing_key=derive_key(b"x" * 32, KeyPurpose.STORAGE_URLS),
        base_url="https://video.example/",
    )
    assert (await store.presign_get("a/b", expires_in=5)).startswith(
        "https://video.example/storage/o/a/b?"
    )
    post = await store.presign_post("a/b", expires_in=5, content_type="video/mp4", max_bytes=9)
    assert post.url == "https://video.example/storage/upload"


# ---------------------------------------------------------------- concurrency
async def test_concurrent_writers_never_mix_bytes_and_metadata(local_store: LocalStorage) -> None:
    """Writers race on one key while readers check that the bytes they got are the ones
    the metadata describes (the ETag is the MD5 of the content)."""
    import asyncio

    key = "race/object"
    await local_store.put_bytes(key, b"seed", metadata={"n": "seed"})
    mismatches: list[str] = []

    async def writer(n: int) -> None:
        body = f"write-{n}-".encode() * (n + 1)
        await local_store.put_bytes(key, body, metadata={"n": str(n)})

    async def reader() -> None:
        for _ in range(40):
            handle, info = await asyncio.to_thread(local_store.open_object, key)
            with handle:
                data = handle.read()
            if hashlib.md5(data, usedforsecurity=False).hexdigest() != info.etag:
                mismatches.append(f"etag {info.etag} for {data[:20]!r}")
            expected = b"seed" if info.metadata["n"] == "seed" else None
            if expected is None:
                n = int(info.metadata["n"])
                expected = f"write-{n}-".encode() * (n + 1)
            if data != expected or info.size != len(data):
                mismatches.append(f"metadata n={info.metadata['n']} for {data[:20]!r}")

    await asyncio.gather(*(writer(n) for n in range(40)), reader(), reader())
    assert mismatches == []
    info = await local_store.head(key)
    assert info is not None
    data = await local_store.get_bytes(key)
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() == info.etag
    assert temp_files(local_store) == []


async def test_delete_racing_writes_in_the_same_directory(local_store: LocalStorage) -> None:
    """Deletes prune empty directories; writers into the same directory still land."""
    import asyncio

    async def cycle(n: int) -> None:
        await local_store.put_bytes(f"dir/sub/k{n}", b"x")
        await local_store.delete(f"dir/sub/k{n}")
        await local_store.put_bytes(f"dir/sub/final{n}", b"y")

    await asyncio.gather(*(cycle(n) for n in range(30)))
    listed = [i.key async for i in local_store.list("dir/")]
    assert listed == sorted(f"dir/sub/final{n}" for n in range(30))
