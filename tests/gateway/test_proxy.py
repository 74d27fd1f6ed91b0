"""Forwarding to the gallery: streaming both ways, status and headers preserved,
hop-by-hop headers dropped, X-Forwarded-For / X-Request-ID added, 502 when down."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .conftest import Gateway, GatewayFactory, free_port, make_settings


@pytest.fixture
async def gw(make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str) -> Gateway:
    return await make_gateway(make_settings(tmp_path, sqlite_url), proxy=True)


async def test_status_headers_query_and_body_pass_through(gw: Gateway) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    response = await gw.client.post(
        "/api/gallery/echo?status=207&a=1&a=2&q=x%20y",
        content=chunks(),
        headers={
            "X-Custom": "kept",
            "Authorization": "Bearer abc",
            "Connection": "keep-alive, X-Hop-Secret",
            "X-Hop-Secret": "must-not-pass",
            "Keep-Alive": "timeout=5",
            "X-Request-ID": "req-12345",
        },
    )
    assert response.status_code == 207
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["query"] == "status=207&a=1&a=2&q=x%20y"
    assert echoed["size"] == len(body)
    assert echoed["sha256"] == hashlib.sha256(body).hexdigest()
    seen = echoed["headers"]
    assert seen["x-custom"] == "kept"
    assert seen["authorization"] == "Bearer abc"
    assert "x-hop-secret" not in seen
    assert "keep-alive" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-request-id"] == "req-12345"
    assert seen["host"] != gw.url.removeprefix("http://")  # the gallery's own host
    # Response headers come back, repeated ones included.
    assert response.headers["x-upstream"] == "fake-gallery"
    assert response.headers["etag"] == '"v1"'
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["x-request-id"] == "req-12345"


async def test_a_proxied_answer_carries_one_date_and_one_server_header(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    """Through a real server (uvicorn writes its own Date and Server): the gallery's are
    not passed on beside them, and a small answer keeps its exact Content-Length."""
    import threading

    import httpx
    import uvicorn

    gw = await make_gateway(make_settings(tmp_path, sqlite_url), proxy=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(gw.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            response = await client.get("/api/gallery/echo?status=200")
        assert response.status_code == 200
        raw = [k.lower() for k, _ in response.headers.raw]
        assert raw.count(b"date") == 1
        assert raw.count(b"server") == 1
        assert "transfer-encoding" not in response.headers
        assert int(response.headers["content-length"]) == len(response.content)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("trusted", "client", "scheme", "host"),
    [
        # No trusted proxy: what the client wrote is not passed on either, or a gallery
        # that trusts the gateway would key its limits and view counts on it.
        ("", "127.0.0.1", "http", None),
        # Behind a trusted proxy: what that proxy said, as the gateway itself believes it.
        ("127.0.0.1", "198.51.100.7", "https", "videos.example.com"),
    ],
)
async def test_the_gallery_is_told_what_the_gateway_believes(
    make_gateway: GatewayFactory,
    tmp_path: Path,
    sqlite_url: str,
    trusted: str,
    client: str,
    scheme: str,
    host: str | None,
) -> None:
    settings = make_settings(tmp_path, sqlite_url, FORWARDED_ALLOW_IPS=trusted)
    gw = await make_gateway(settings, proxy=True)
    claimed = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https"}
    claimed["X-Forwarded-Host"] = "videos.example.com"
    seen = (await gw.client.get("/api/gallery/echo", headers=claimed)).json()["headers"]
    assert (seen["x-forwarded-for"], seen["x-forwarded-proto"]) == (client, scheme)
    assert seen["x-forwarded-host"] == (host or gw.url.removeprefix("http://"))


async def test_methods_and_client_errors_are_relayed(gw: Gateway) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await gw.client.request(method, "/api/gallery/echo?status=404")
        assert response.status_code == 404
        assert response.json()["method"] == method
    missing = await gw.client.get("/api/gallery/videos/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "video_not_found"


async def test_response_is_streamed_not_buffered(gw: Gateway) -> None:
    gw.gallery.release.clear()
    async with gw.client.stream("GET", "/api/gallery/slow-stream") as response:
        assert response.status_code == 200
        iterator = response.aiter_raw()
        # The gallery holds the rest back until we say so: a buffering proxy would hang.
        first = await asyncio.wait_for(iterator.__anext__(), timeout=5)
        assert first.startswith(b"first-chunk;")
        gw.gallery.release.set()
        rest = first + b"".join([chunk async for chunk in iterator])
    assert rest == b"first-chunk;second-chunk"


async def test_gallery_down_is_502(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url, GALLERY_URL=f"http://127.0.0.1:{free_port()}")
    gw = await make_gateway(settings, with_gallery=False)
    for path in ("/api/gallery/videos", "/api/upload/url", "/storage/some/key"):
        response = await gw.client.get(path)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unavailable"
    health = await gw.client.get("/health")
    assert health.status_code == 503
    assert health.json()["checks"]["gallery"].startswith("error")


async def test_without_gallery_url_nothing_is_forwarded(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url), with_gallery=False)
    response = await gw.client.get("/api/gallery/videos")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
