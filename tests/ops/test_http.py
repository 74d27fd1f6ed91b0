"""The common HTTP layer on a small FastAPI app served by a real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from videoforge.infra.errors import NotFound
from videoforge.infra.http import get_request_id, install_common
from videoforge.infra.logging import configure_logging
from videoforge.settings import Settings, load_settings

#: tests/conftest.py sets METRICS_TOKEN: /metrics on a service port needs it.
METRICS_AUTH = {"Authorization": f"Bearer {os.environ['METRICS_TOKEN']}"}

Serve = Callable[[Any], AbstractAsyncContextManager[str]]


def make_app(settings: Settings, service: str) -> tuple[FastAPI, asyncio.Event]:
    app = FastAPI()
    install_common(app, service=service, settings=settings)
    release = asyncio.Event()
    log = structlog.get_logger("videoforge.test.handler")

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str | None]:
        log.info("item_read", item_id=item_id)
        logging.getLogger("thirdparty.lib").warning("library says hi")
        return {"id": item_id, "request_id": get_request_id()}

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("No such video.")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database exploded")

    @app.get("/framed")
    async def framed() -> Response:
        return Response("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            # Only the client's reading of the first chunk releases the rest: a buffering
            # middleware would deadlock here (and the test would time out).
            await asyncio.wait_for(release.wait(), timeout=10)
            yield b"second\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    return app, release


@pytest.fixture
def service_name() -> str:
    # Metrics are process-wide: a fresh service label per test keeps counts exact.
    return f"svc_{uuid.uuid4().hex[:8]}"


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_request_id_generated_echoed_and_in_logs(
    serve: Serve, log_stream: io.StringIO, service_name: str
) -> None:
    settings = load_settings(LOG_FORMAT="json")
    configure_logging(settings, service=service_name, stream=log_stream)
    app, _ = make_app(settings, service_name)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        generated = await client.get("/items/7")
        given = await client.get("/items/8", headers={"X-Request-ID": "trace-abc.123"})
        hostile = await client.get("/items/9", headers={"X-Request-ID": "bad id\twith spaces"})

    rid = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert generated.json() == {"id": "7", "request_id": rid}
    assert given.headers["x-request-id"] == "trace-abc.123"
    assert given.json()["request_id"] == "trace-abc.123"
    # An insane incoming id is replaced, not echoed.
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])

    lines = _json_lines(log_stream)
    handler_lines = [line for line in lines if line["event"] == "item_read"]
    assert [line["request_id"] for line in handler_lines] == [
        rid,
        "trace-abc.123",
        hostile.headers["x-request-id"],
    ]
    library = [line for line in lines if line["event"] == "library says hi"]
    assert library[1]["request_id"] == "trace-abc.123"
    access = [line for line in lines if line["event"] == "http_request"]
    assert len(access) == 3
    assert access[1]["request_id"] == "trace-abc.123"
    assert access[1]["route"] == "/items/{item_id}"
    assert access[1]["path"] == "/items/8"
    assert access[1]["status"] == 200
    assert access[1]["duration_ms"] >= 0
    assert all(line["service"] == service_name for line in lines)


async def test_metrics_count_requests_by_route_template(serve: Serve, service_name: str) -> None:
    app, _ = make_app(load_settings(), service_name)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        for item in ("a", "b", "c"):
            assert (await client.get(f"/items/{item}")).status_code == 200
        assert (await client.get("/missing")).status_code == 404
        assert (await client.get("/no/such/route/xyz")).status_code == 404
        scrape = await client.get("/metrics", headers=METRICS_AUTH)

    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    svc = f'service="{service_name}"'
    count_line = (
        f'videoforge_http_requests_total{{method="GET",route="/items/{{item_id}}",{svc},'
        'status="200"} 3.0'
    )
    assert count_line in text
    assert (
        f'videoforge_http_requests_total{{method="GET",route="/missing",{svc},status="404"}} 1.0'
        in text
    )
    # Raw paths never become labels.
    assert "/no/such/route/xyz" not in text
    assert (
        f'videoforge_http_requests_total{{method="GET",route="<unmatched>",{svc},status="404"}} 1.0'
        in text
    )
    bucket = re.search(
        rf'videoforge_http_request_duration_seconds_count\{{method="GET",'
        rf'route="/items/\{{item_id\}}",{svc},status="200"\}} (\S+)',
        text,
    )
    assert bucket is not None
    assert float(bucket.group(1)) == 3.0


async def test_mounted_apps_get_one_route_label(
    serve: Serve, service_name: str, tmp_path: Path
) -> None:
    from fastapi.staticfiles import StaticFiles

    (tmp_path / "a.txt").write_text("hello")
    app, _ = make_app(load_settings(), service_name)
    app.mount("/files", StaticFiles(directory=tmp_path), name="files")
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/files/a.txt")).text == "hello"
        assert (await client.get("/files/missing.txt")).status_code == 404
        text = (await client.get("/metrics", headers=METRICS_AUTH)).text

    sample = (
        'videoforge_http_requests_total{{method="GET",route="/files/{{path}}",{svc},status="{st}"}}'
    )
    svc = f'service="{service_name}"'
    assert sample.format(svc=svc, st="200") + " 1.0" in text
    assert sample.format(svc=svc, st="404") + " 1.0" in text
    assert "a.txt" not in text


async def test_baseline_security_headers_and_app_override(serve: Serve, service_name: str) -> None:
    app, _ = make_app(load_settings(), service_name)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        plain = await client.get("/items/1")
        error = await client.get("/missing")
        framed = await client.get("/framed")

    for response in (plain, error):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    # The app's own value wins, and is not duplicated.
    assert framed.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert framed.headers["x-content-type-options"] == "nosniff"


async def test_errors_keep_the_json_format_with_ids_and_headers(
    serve: Serve, log_stream: io.StringIO, service_name: str
) -> None:
    settings = load_settings(LOG_FORMAT="json")
    configure_logging(settings, service=service_name, stream=log_stream)
    app, _ = make_app(settings, service_name)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        missing = await client.get("/missing")
        boom = await client.get("/boom", headers={"X-Request-ID": "boom-1"})
        scrape = await client.get("/metrics", headers=METRICS_AUTH)

    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "No such video."}}
    assert boom.status_code == 500
    assert boom.json() == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side."}
    }
    assert "database exploded" not in boom.text
    # The 500 is rendered inside our middleware: it has the id and the headers...
    assert boom.headers["x-request-id"] == "boom-1"
    assert boom.headers["x-content-type-options"] == "nosniff"
    # ...is counted with its real status...
    assert (
        f'videoforge_http_requests_total{{method="GET",route="/boom",'
        f'service="{service_name}",status="500"}} 1.0' in scrape.text
    )
    # ...and logged once with the traceback and the request id.
    lines = _json_lines(log_stream)
    (unhandled,) = [line for line in lines if line["event"] == "unhandled_error"]
    assert unhandled["request_id"] == "boom-1"
    assert "RuntimeError: database exploded" in unhandled["exception"]
    (access,) = [
        line for line in lines if line["event"] == "http_request" and line["path"] == "/boom"
    ]
    assert access["status"] == 500


async def test_streaming_response_is_not_buffered(serve: Serve, service_name: str) -> None:
    app, release = make_app(load_settings(), service_name)
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=15) as client,
        client.stream("GET", "/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-request-id"]
        assert response.headers["x-content-type-options"] == "nosniff"
        chunks = response.aiter_raw()
        first = await asyncio.wait_for(anext(chunks), timeout=5)
        assert first == b"first\n"
        release.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"second\n"


async def test_cors_from_settings(serve: Serve, service_name: str) -> None:
    origin = "https://videos.example.org"
    app, _ = make_app(load_settings(CORS_ORIGINS=origin), service_name)
    no_cors_app, _ = make_app(load_settings(), service_name + "_nocors")
    preflight_headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type,authorization",
    }
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        preflight = await client.options("/items/1", headers=preflight_headers)
        simple = await client.get("/items/1", headers={"Origin": origin})
        stranger = await client.get("/items/1", headers={"Origin": "https://evil.example"})
        error = await client.get("/boom", headers={"Origin": origin})
    async with serve(no_cors_app) as base, httpx.AsyncClient(base_url=base) as client:
        closed = await client.get("/items/1", headers={"Origin": origin})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["x-request-id"]
    assert simple.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in stranger.headers
    # A browser can read the error body of a failed cross-origin call.
    assert error.status_code == 500
    assert error.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in closed.headers


async def test_metrics_endpoint_reads_app_queues_and_app_collectors(
    serve: Serve, service_name: str, sqlite_url: str
) -> None:
    from types import SimpleNamespace

    from videoforge.infra import metrics
    from videoforge.infra.db import create_engine
    from videoforge.infra.http import register_app_collector
    from videoforge.infra.queue import build_queues

    engine = create_engine(sqlite_url, pool_size=2)
    try:
        queues = build_queues(load_settings(), engine)
        for n in range(4):
            await queues.jobs.send(f'{{"n": {n}}}')
        app, _ = make_app(load_settings(), service_name)
        app.state.infra = SimpleNamespace(queues=queues)
        scrapes = 0

        async def jobs_by_state() -> None:
            nonlocal scrapes
            scrapes += 1
            metrics.set_jobs_by_state({f"{service_name}_PENDING": 4})

        register_app_collector(app, "jobs_by_state", jobs_by_state)
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
            text = (await client.get("/metrics", headers=METRICS_AUTH)).text
    finally:
        await engine.dispose()

    assert 'videoforge_queue_depth{queue="jobs"} 4.0' in text
    assert 'videoforge_queue_depth{queue="events"} 0.0' in text
    assert f'videoforge_jobs{{state="{service_name}_PENDING"}} 4.0' in text
    assert scrapes == 1


async def test_metrics_are_not_served_to_anonymous_clients(
    serve: Serve, service_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a token configured: only a request bearing it is answered.
    app, _ = make_app(load_settings(), service_name)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer wrong-token-xx"})
        right = await client.get("/metrics", headers=METRICS_AUTH)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "videoforge_http_requests_total" in right.text
    # Without one: the public port has no /metrics at all (METRICS_PORT serves them).
    monkeypatch.delenv("METRICS_TOKEN")
    app, _ = make_app(load_settings(), service_name + "_open")
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/metrics")
    assert r.status_code == 404
    assert "videoforge_" not in r.text


@pytest.mark.parametrize(
    ("trusted", "client", "scheme"),
    [
        ("", "127.0.0.1", "http"),  # nobody trusted: the peer itself, whatever it claims
        ("127.0.0.1", "198.51.100.7", "https"),  # the hop the trusted proxy appended
        ("127.0.0.1, 198.51.100.0/24", "203.0.113.9", "https"),  # trusted hops skipped
        ("10.0.0.0/8", "127.0.0.1", "http"),  # the peer is not one of the trusted proxies
        # Any peer is a proxy, but only its own hop is believed: a load balancer appends
        # the client's address to whatever X-Forwarded-For the client sent.
        ("*", "198.51.100.7", "https"),
    ],
)
async def test_client_address_comes_from_x_forwarded_for_only_via_trusted_proxies(
    serve: Serve, service_name: str, trusted: str, client: str, scheme: str
) -> None:
    app, _ = make_app(load_settings(FORWARDED_ALLOW_IPS=trusted), service_name)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        return {"ip": request.client.host if request.client else None, "scheme": request.url.scheme}

    # The leftmost hop is what the client itself wrote; proxies appended the others.
    forwarded = "6.6.6.6, 203.0.113.9, 198.51.100.7"
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.get(
            "/whoami", headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"}
        )
    assert r.json() == {"ip": client, "scheme": scheme}
