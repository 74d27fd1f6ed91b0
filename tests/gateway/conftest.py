"""Gateway test harness: the real app served by uvicorn on loopback, real databases,
queues and caches from the shared fixtures, and (until the gallery app can stand in)
the fake gallery of ``tests/fakes.py`` served the same way."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.gateway.app import create_app
from videoforge.gateway.deps import GatewayOptions
from videoforge.gateway.gallery.client import GalleryClient
from videoforge.infra.runtime import Infra, build_infra
from videoforge.settings import AuthBackend, Settings


def _load_fakes() -> Any:
    # Tests run with --import-mode=importlib (no package): load tests/fakes.py by path.
    name = "videoforge_test_fakes"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "fakes.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fakes = _load_fakes()

DEFAULT_PASSWORD = "correct horse 1"
#: Cheap Argon2id parameters: tests hash many passwords on a shared 2-core machine.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port (in this event loop)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        ws="none",
        access_log=False,
        proxy_headers=False,  # as infra.http.run_app: the app's own middleware decides
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        task.cancel()
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "VIDEOFORGE_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Gateway:
    url: str
    client: httpx.AsyncClient
    infra: Infra
    settings: Settings
    gallery: Any  # FakeGallery | None
    app: Any

    async def signup(self, email: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/api/auth/signup", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    @property
    def issuer(self) -> TokenIssuer:
        """The gateway's own issuer (local accounts)."""
        issuer: TokenIssuer | None = self.app.state.gateway.issuer
        assert issuer is not None
        return issuer

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Build gateways: ``await make_gateway(settings, options=..., with_gallery=True)``."""
    stack: list[Any] = []

    async def factory(
        settings: Settings,
        *,
        options: GatewayOptions | None = None,
        with_gallery: bool = True,
        proxy: bool = False,
        infra_hook: Callable[[Infra], None] | None = None,
    ) -> Gateway:
        infra = await build_infra(
            settings, with_signing_key=settings.auth_backend is AuthBackend.LOCAL
        )
        stack.append(("infra", infra))
        if infra_hook is not None:
            infra_hook(infra)
        gallery = None
        gallery_client = None
        if with_gallery:
            gallery = fakes.FakeGallery(verifier=infra.verifier)
            cm = serve(gallery.build_app())
            gallery_url = await cm.__aenter__()
            stack.append(("cm", cm))
            if proxy:
                settings = settings.model_copy(update={"gallery_url": gallery_url})
                infra.settings = settings
            else:
                http = httpx.AsyncClient(timeout=10)
                stack.append(("http", http))
                gallery_client = GalleryClient(gallery_url, http)
        opts = options or GatewayOptions(password_hasher=CHEAP_HASHER)
        app = create_app(settings, infra, gallery_client=gallery_client, options=opts)
        cm = serve(app)
        url = await cm.__aenter__()
        stack.append(("cm", cm))
        client = httpx.AsyncClient(base_url=url, timeout=30)
        stack.append(("http", client))
        return Gateway(
            url=url, client=client, infra=infra, settings=settings, gallery=gallery, app=app
        )

    yield factory
    for kind, item in reversed(stack):
        if kind == "cm":
            await item.__aexit__(None, None, None)
        elif kind == "http":
            await item.aclose()
        else:
            await item.aclose()
