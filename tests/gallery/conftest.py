"""Gallery test fixtures: settings on a fresh migrated database, real backends, an
httpx client on the app, token minting, and helpers to seed videos and events."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from videoforge.gallery.app import create_app
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra, build_infra
from videoforge.settings import Settings

ADMIN_GROUP = "admin"


def make_settings(database_url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings(DATABASE_URL=database_url, VIDEOFORGE_DATA_DIR=data_dir, **extra)


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    """Override in a test module to change settings (e.g. S3)."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_extra: dict[str, Any]) -> Settings:
    return make_settings(database_url, tmp_path / "data", **settings_extra)


@pytest.fixture
async def infra(settings: Settings) -> AsyncIterator[Infra]:
    built = await build_infra(settings, with_signing_key=True)
    try:
        yield built
    finally:
        await built.aclose()


@pytest.fixture
async def client(settings: Settings, infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, infra)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class Users:
    """Bearer headers for the four kinds of caller."""

    def __init__(self, infra: Infra) -> None:
        assert infra.signing_key is not None
        self.issuer = TokenIssuer.from_settings(infra.settings, key=infra.signing_key)
        self.owner_id = f"owner-{uuid.uuid4().hex[:8]}"
        self.other_id = f"other-{uuid.uuid4().hex[:8]}"
        self.admin_id = f"admin-{uuid.uuid4().hex[:8]}"

    def headers(self, user_id: str, *, admin: bool = False) -> dict[str, str]:
        token = self.issuer.issue_access(user_id, groups=[ADMIN_GROUP] if admin else [])
        return {"Authorization": f"Bearer {token}"}

    @property
    def owner(self) -> dict[str, str]:
        return self.headers(self.owner_id)

    @property
    def other(self) -> dict[str, str]:
        return self.headers(self.other_id)

    @property
    def admin(self) -> dict[str, str]:
        return self.headers(self.admin_id, admin=True)


@pytest.fixture
def users(infra: Infra) -> Users:
    return Users(infra)


SeedVideo = Callable[..., Awaitable[GalleryVideo]]


@pytest.fixture
def seed_video(infra: Infra) -> SeedVideo:
    """Insert a video row directly (as if uploaded and processed)."""

    async def seed(
        user_id: str,
        *,
        title: str = "A video",
        description: str = "",
        visibility: Visibility = Visibility.PUBLIC,
        status: VideoStatus = VideoStatus.READY,
        created_at: datetime | None = None,
        **fields: Any,
    ) -> GalleryVideo:
        video = GalleryVideo(
            id=uuid.uuid4(),
            user_id=user_id,
            title=title,
            description=description,
            visibility=visibility,
            status=status,
            renditions=fields.pop("renditions", []),
            **fields,
        )
        if created_at is not None:
            video.created_at = created_at
            video.updated_at = created_at
        async with session_scope(infra.sessions) as session:
            session.add(video)
        return video

    return seed


@pytest.fixture(scope="session")
def tiny_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 0.5 s 64x48 H.264 MP4 made by ffmpeg."""
    out = tmp_path_factory.mktemp("media") / "tiny.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=0.5",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-movflags",
            "+faststart",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def at(minutes: int) -> datetime:
    """A fixed, distinct creation time (minutes after a base)."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)


async def store_upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> str:
    """An original stored through a presigned form (not confirmed yet); its key."""
    ticket = await client.post(
        "/api/upload/url",
        json={"filename": "clip.mp4", "content_type": "video/mp4", "size": len(data)},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    single = ticket.json()["single"]
    posted = await client.post(
        single["url"], data=single["fields"], files={"file": ("clip.mp4", data, "video/mp4")}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    key: str = ticket.json()["key"]
    return key
