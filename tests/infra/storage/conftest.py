"""Fixtures for the storage tests: both backends behind one harness.

``harness`` is parametrised over the local store (a temp directory, its signed URLs
served by the real ``/storage`` router through httpx's ASGI transport) and S3Storage
against the real moto server on loopback (a fresh bucket per test).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from videoforge.infra.errors import install_error_handlers
from videoforge.infra.secrets import KeyPurpose, derive_key
from videoforge.infra.storage.http.routes import router
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.infra.storage.s3.store import S3Storage

MiB = 1024 * 1024


class Clock:
    """A settable clock so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def storage_app(storage: object) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.infra = SimpleNamespace(storage=storage)
    return app


@dataclass
class Harness:
    kind: str
    store: LocalStorage | S3Storage
    #: Fetches the store's presigned URLs (ASGI transport for local, real HTTP for S3).
    http: httpx.AsyncClient


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def local_store(local_root: Path, clock: Clock) -> LocalStorage:
    return LocalStorage(
        local_root,
        signing_key=derive_key(b"test-secret-for-storage", KeyPurpose.STORAGE_URLS),
        clock=clock,
        max_put_bytes=8 * MiB,
    )


@pytest.fixture
async def local_client(local_store: LocalStorage) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=storage_app(local_store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def make_s3_store(endpoint: str, unique: str, **kwargs: object) -> S3Storage:
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "path_style": True,
        "multipart_threshold": 5 * MiB,
        "multipart_chunksize": 5 * MiB,
        "list_page_size": 7,
        **kwargs,
    }
    store = S3Storage(f"vf-test-{unique}", **options)
    await store.ensure_bucket(cors_origins=["http://localhost:3000"])
    return store


@pytest.fixture(params=["local", "s3"])
async def harness(
    request: pytest.FixtureRequest, local_store: LocalStorage, unique: str
) -> AsyncIterator[Harness]:
    if request.param == "local":
        transport = httpx.ASGITransport(app=storage_app(local_store))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Harness("local", local_store, c)
        return
    endpoint = str(request.getfixturevalue("moto_endpoint"))
    store = await make_s3_store(endpoint, unique)
    async with httpx.AsyncClient() as client:
        yield Harness("s3", store, client)


@pytest.fixture
def make_app() -> object:
    """``make_app(storage)``: a FastAPI app serving ``/storage`` for that store."""
    return storage_app
