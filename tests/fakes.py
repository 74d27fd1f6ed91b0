"""Fakes, only where the real part cannot run in a test. Each is named as a fake.

- :class:`FakeGallery` — a stand-in for the gallery's HTTP API, used by the gateway
  tests (the gallery app is developed in parallel). It verifies tokens with the real
  shared verifier and applies the gallery's visibility rule for a single video (a
  private video is 404 to anyone but its owner and admins; ``s3_key`` only for them),
  and has echo/stream endpoints to observe what the gateway's proxy forwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from videoforge.infra.auth.principal import Principal
from videoforge.infra.auth.verifier import TokenVerifier
from videoforge.infra.errors import Unauthorized


@dataclass
class FakeVideo:
    id: uuid.UUID
    user_id: str
    title: str
    status: str = "uploaded"
    visibility: str = "private"
    s3_key: str | None = None
    source_url: str | None = None


@dataclass
class FakeGallery:
    """A FAKE gallery HTTP API (see the module docstring)."""

    verifier: TokenVerifier
    videos: dict[uuid.UUID, FakeVideo] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def add_video(self, user_id: str, *, visibility: str = "private") -> FakeVideo:
        video_id = uuid.uuid4()
        video = FakeVideo(
            id=video_id,
            user_id=user_id,
            title="clip",
            visibility=visibility,
            s3_key=f"originals/{user_id}/{video_id.hex}/source",
        )
        self.videos[video_id] = video
        return video

    async def _principal(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        return await self.verifier.verify(header.removeprefix("Bearer ").strip())

    @staticmethod
    def _read(video: FakeVideo, principal: Principal | None) -> dict[str, Any]:
        owner = principal is not None and (principal.user_id == video.user_id or principal.is_admin)
        now = datetime.now(UTC).isoformat()
        return {
            "id": str(video.id),
            "user_id": video.user_id,
            "title": video.title,
            "status": video.status,
            "visibility": video.visibility,
            "s3_key": video.s3_key if owner else None,
            "source_url": video.source_url,
            "created_at": now,
            "updated_at": now,
        }

    def build_app(self) -> FastAPI:
        app = FastAPI()

        @app.exception_handler(Unauthorized)
        async def _unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
            return JSONResponse(
                {"error": {"code": exc.code, "message": exc.message}}, status_code=401
            )

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.delete("/api/gallery/me/videos")
        async def delete_my_videos(request: Request) -> Response:
            # Only the caller's own videos, like the real gallery's endpoint.
            principal = await self._principal(request)
            if principal is None:
                raise Unauthorized("Log in first.")
            mine = [k for k, v in self.videos.items() if v.user_id == principal.user_id]
            for key in mine:
                del self.videos[key]
            self.hits["delete_my_videos"] += 1
            return JSONResponse({"deleted": len(mine)})

        @app.get("/api/gallery/videos/{video_id}")
        async def get_video(video_id: uuid.UUID, request: Request) -> Response:
            self.hits["get_video"] += 1
            self.seen_headers.append(dict(request.headers))
            principal = await self._principal(request)
            video = self.videos.get(video_id)
            visible = video is not None and (
                video.visibility != "private"
                or (
                    principal is not None
                    and (principal.user_id == video.user_id or principal.is_admin)
                )
            )
            if video is None or not visible:
                return JSONResponse(
                    {"error": {"code": "video_not_found", "message": "Video not found."}},
                    status_code=404,
                )
            return JSONResponse(self._read(video, principal))

        @app.post("/api/gallery/videos")
        async def create_video(request: Request) -> Response:
            self.hits["create_video"] += 1
            principal = await self._principal(request)
            if principal is None:
                return JSONResponse(
                    {"error": {"code": "auth_required", "message": "Log in."}}, status_code=401
                )
            body = await request.json()
            video = FakeVideo(
                id=uuid.uuid4(),
                user_id=principal.user_id,
                title=body["title"],
                source_url=body["source_url"],
            )
            self.videos[video.id] = video
            return JSONResponse(self._read(video, principal), status_code=201)

        @app.api_route("/api/gallery/echo", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def echo(request: Request) -> Response:
            self.hits["echo"] += 1
            digest = hashlib.sha256()
            size = 0
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
            status = int(request.query_params.get("status", "200"))
            response = JSONResponse(
                {
                    "method": request.method,
                    "query": request.url.query,
                    "headers": dict(request.headers),
                    "size": size,
                    "sha256": digest.hexdigest(),
                },
                status_code=status,
                headers={"X-Upstream": "fake-gallery", "ETag": '"v1"'},
            )
            response.raw_headers.append((b"set-cookie", b"a=1; Path=/"))
            response.raw_headers.append((b"set-cookie", b"b=2; Path=/"))
            return response

        @app.get("/api/gallery/slow-stream")
        async def slow_stream() -> StreamingResponse:
            async def body() -> AsyncIterator[bytes]:
                yield b"first-chunk;"
                await self.release.wait()
                yield b"second-chunk"

            return StreamingResponse(body(), media_type="application/octet-stream")

        @app.post("/api/upload/url")
        async def upload_url() -> dict[str, bool]:
            self.hits["upload_url"] += 1
            return {"ok": True}

        @app.post("/api/gallery/videos/{video_id}/views")
        async def views(video_id: uuid.UUID) -> dict[str, bool]:
            self.hits["views"] += 1
            return {"recorded": True}

        return app


class FakeFlakyQueue:
    """A FAKE fault: wraps a real queue and fails its first ``failures`` sends with
    :class:`~videoforge.infra.queue.base.QueueError` (a queue outage that heals), so a
    test can watch a producer's retries without stopping a real server mid-call."""

    def __init__(self, real: Any, *, failures: int) -> None:
        self.real = real
        self.name = real.name
        self.failures = failures
        self.attempts = 0

    async def send(self, body: str, *, delay_seconds: int = 0) -> str:
        from videoforge.infra.queue.base import QueueError

        self.attempts += 1
        if self.attempts <= self.failures:
            raise QueueError(f"fake outage, send {self.attempts}")
        return str(await self.real.send(body, delay_seconds=delay_seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
