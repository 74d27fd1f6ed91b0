"""One upload, traced end to end in one process, its spans printed as JSON lines.

Run by tests/ops/test_tracing.py in a process of its own: the tracer provider is
process-global, and no other test should run with tracing on. The embedded stack's
parts run here together (gateway and gallery apps on their shared backends, the
gallery's event consumer and a worker handling the job's queue message), with an
in-memory exporter. The client is traced too: every request it makes carries the
``traceparent`` of its one span, as a traced client's would.

Usage: python tests/ops/tracing_flow.py DATA_DIR CLIP
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from videoforge import migrations
from videoforge.gallery.app import create_app as create_gallery
from videoforge.gallery.events import consume_once
from videoforge.gateway.app import create_app as create_gateway
from videoforge.gateway.gallery.client import GalleryClient
from videoforge.infra import tracing
from videoforge.infra.logging import configure_logging
from videoforge.infra.runtime import build_infra
from videoforge.paths import is_gallery_path
from videoforge.processor.worker import Worker
from videoforge.settings import Settings


async def serve(app: Any) -> tuple[uvicorn.Server, str]:
    """``app`` on a loopback port of its own, in this event loop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", proxy_headers=False
    )
    server = uvicorn.Server(config)
    asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def flow(data_dir: Path, clip: bytes) -> list[dict[str, Any]]:
    url = f"sqlite+aiosqlite:///{data_dir / 'videoforge.db'}"
    await asyncio.to_thread(migrations.upgrade, url)  # before tracing: not part of the flow
    exporter = InMemorySpanExporter()
    assert tracing.configure("flow", exporter=exporter)
    settings = Settings(
        VIDEOFORGE_DATA_DIR=data_dir,
        DATABASE_URL=url,
        RATE_LIMITS="off",
        FFMPEG_THREADS=1,
        LOG_FORMAT="json",
    )
    configure_logging(settings, service="flow")
    infra = await build_infra(settings, with_signing_key=True)
    gallery = create_gallery(settings, infra)
    gallery_server, gallery_url = await serve(gallery)
    # Real HTTP between the services, as deployed: the httpx instrumentation carries
    # the trace from the gateway to the gallery.
    to_gallery = httpx.AsyncClient()
    gateway = create_gateway(settings, infra, gallery_client=GalleryClient(gallery_url, to_gallery))

    async def site(scope: Any, receive: Any, send: Any) -> None:
        app = gallery if is_gallery_path(scope.get("path", "")) else gateway
        await app(scope, receive, send)

    site_server, site_url = await serve(site)
    client = httpx.AsyncClient(base_url=site_url, timeout=30)
    try:
        with tracing.tracer.start_as_current_span("client: publish a video"):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            signup = await client.post(
                "/api/auth/signup",
                json={"email": "viewer@example.com", "password": "a traced pass phrase 93"},
                headers=headers,
            )
            assert signup.status_code == 201, signup.text
            headers["Authorization"] = f"Bearer {signup.json()['access_token']}"
            ticket = await client.post(
                "/api/upload/url",
                json={"filename": "t.mp4", "content_type": "video/mp4", "size": len(clip)},
                headers=headers,
            )
            assert ticket.status_code == 201, ticket.text
            single = ticket.json()["single"]
            sent = await client.post(
                single["url"],
                data=single["fields"],
                files={"file": ("t.mp4", clip, "video/mp4")},
                headers={k: v for k, v in headers.items() if k != "Authorization"},
            )
            assert sent.status_code in (200, 201, 204), sent.text
            video = await client.post(
                "/api/upload/confirm",
                json={"key": ticket.json()["key"], "title": "traced"},
                headers=headers,
            )
            assert video.status_code == 201, video.text
            job = await client.post(
                "/api/jobs", json={"video_id": video.json()["id"]}, headers=headers
            )
            assert job.status_code == 201, job.text
        # Outside the client's span, as another process would: only the message's
        # attributes can tie what follows to the trace.
        assert trace.get_current_span() is trace.INVALID_SPAN
        (message,) = await infra.queues.jobs.receive(wait_seconds=5)
        await Worker(infra).handle(message)
        for _ in range(20):
            await consume_once(infra, wait_seconds=0.5)
            state = await client.get(
                f"/api/gallery/videos/{video.json()['id']}",
                headers={"Authorization": headers["Authorization"]},
            )
            if state.json()["status"] == "ready":
                break
        assert state.json()["status"] == "ready", state.text
    finally:
        await client.aclose()
        await to_gallery.aclose()
        for server in (site_server, gallery_server):
            server.should_exit = True
        await asyncio.sleep(0.3)
        await infra.aclose()
    return [
        {
            "name": s.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "kind": s.kind.name,
            "attributes": {k: str(v) for k, v in (s.attributes or {}).items()},
        }
        for s in exporter.get_finished_spans()
    ]


def main() -> None:
    data_dir, clip = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes()
    for span in asyncio.run(flow(data_dir, clip)):
        print("SPAN " + json.dumps(span))


if __name__ == "__main__":
    main()
