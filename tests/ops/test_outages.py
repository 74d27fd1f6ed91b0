"""Outages of Redis and PostgreSQL, made for real: private servers started here are
killed mid-test and started again.

While a dependency is down every request that needs it answers 503 ``unavailable`` with
``Retry-After`` (never a 500), ``/health`` says what is down, and the first request after
the restart succeeds (no stale pooled connection fails it). A view answered
``counted: true`` survives Redis losing its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
import structlog.testing
from argon2 import PasswordHasher
from sqlalchemy import exc as sa_exc

from videoforge import migrations
from videoforge.gallery import limits, views
from videoforge.gallery.app import create_app as create_gallery
from videoforge.gallery.events import run_event_consumer
from videoforge.gallery.lifecycle.delivery import run_lifecycle_delivery
from videoforge.gallery.models import GalleryVideo, GalleryViewLog, VideoStatus, Visibility
from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.gateway.app import create_app as create_gateway
from videoforge.gateway.deps import GatewayOptions
from videoforge.gateway.gallery.client import GalleryClient
from videoforge.gateway.ratelimit import Action, RateLimiter
from videoforge.infra.cache.redis import RedisCache
from videoforge.infra.db import (
    create_engine,
    is_connection_error,
    session_factory,
    session_scope,
)
from videoforge.infra.errors import CacheUnavailable
from videoforge.infra.runtime import Infra, build_infra
from videoforge.settings import Settings, load_settings

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse 1"
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, *, up: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                listening = True
        except OSError:
            listening = False
        if listening == up:
            return
        time.sleep(0.05)
    raise RuntimeError(f"127.0.0.1:{port} still {'down' if up else 'up'} after {timeout}s")


class PrivateRedis:
    """A redis-server of this test alone, without persistence: a restart loses its data."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, up=True)

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost node: open connections just die."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
        _wait_port(self.port, up=False)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _settings(tmp_path: Path, database_url: str, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        DATABASE_URL=database_url,
        VIDEOFORGE_DATA_DIR=str(tmp_path / "data"),
        **extra,
    )


@dataclasses.dataclass
class Stack:
    """The gateway in front of the real gallery (in-process ASGI), on one infra."""

    infra: Infra
    gateway: httpx.AsyncClient
    gallery: httpx.AsyncClient
    gallery_app: Any

    def gallery_from(self, address: str) -> httpx.AsyncClient:
        """A client of the gallery that connects from ``address``."""
        transport = httpx.ASGITransport(app=self.gallery_app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gallery")


@asynccontextmanager
async def _stack(settings: Settings) -> AsyncIterator[Stack]:
    infra = await build_infra(settings, with_signing_key=True)
    gallery_app = create_gallery(settings, infra)
    to_gallery = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gallery_app), base_url="http://gallery"
    )
    gateway_app = create_gateway(
        settings,
        infra,
        gallery_client=GalleryClient("http://gallery", to_gallery),
        options=GatewayOptions(password_hasher=CHEAP_HASHER),
    )
    gateway = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway_app), base_url="http://gateway"
    )
    gallery = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gallery_app), base_url="http://gallery"
    )
    try:
        yield Stack(infra=infra, gateway=gateway, gallery=gallery, gallery_app=gallery_app)
    finally:
        for client in (gateway, gallery, to_gallery):
            await client.aclose()
        await infra.aclose()


async def _seed_video(infra: Infra, user_id: str) -> GalleryVideo:
    video = GalleryVideo(
        id=uuid.uuid4(),
        user_id=user_id,
        title="A video",
        visibility=Visibility.PUBLIC,
        status=VideoStatus.READY,
        renditions=[],
        s3_key=f"originals/{uuid.uuid4().hex}.mp4",
    )
    async with session_scope(infra.sessions) as session:
        session.add(video)
    return video


def _assert_unavailable(response: httpx.Response, dependency: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert error["details"] == {"dependency": dependency}


class Actions:
    """The five actions of the fault report, each as one request."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.n = 0

    def _email(self) -> str:
        self.n += 1
        return f"outage-{self.n}-{uuid.uuid4().hex[:8]}@example.com"

    async def signup(self) -> httpx.Response:
        return await self.stack.gateway.post(
            "/api/auth/signup", json={"email": self._email(), "password": PASSWORD}
        )

    async def login(self, email: str) -> httpx.Response:
        return await self.stack.gateway.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}
        )

    async def upload_url(self, token: str) -> httpx.Response:
        return await self.stack.gallery.post(
            "/api/upload/url",
            json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def create_job(self, token: str, video: GalleryVideo) -> httpx.Response:
        return await self.stack.gateway.post(
            "/api/jobs",
            json={"video_id": str(video.id)},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def view(self, video: GalleryVideo, token: str) -> httpx.Response:
        return await self.stack.gallery.post(
            f"/api/gallery/videos/{video.id}/views",
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_redis_outage_is_503_and_the_restart_costs_nothing_after(
    tmp_path: Path, sqlite_url: str, private_redis: PrivateRedis
) -> None:
    settings = _settings(
        tmp_path, sqlite_url, REDIS_URL=private_redis.url, REDIS_KEY_PREFIX="outage:"
    )
    async with _stack(settings) as stack:
        act = Actions(stack)
        signed = await act.signup()
        assert signed.status_code == 201, signed.text
        email = signed.json()["user"]["email"]
        token = signed.json()["access_token"]
        user_id = signed.json()["user"]["id"]
        videos = [await _seed_video(stack.infra, user_id) for _ in range(3)]

        # Before: everything works, and the pool holds connections opened now.
        assert (await act.login(email)).status_code == 200
        assert (await act.upload_url(token)).status_code == 201
        assert (await act.create_job(token, videos[0])).status_code == 201
        assert (await act.view(videos[0], token)).json() == {"counted": True}
        await asyncio.gather(*(stack.infra.cache.get(f"warm-{i}") for i in range(8)))

        private_redis.kill()
        _assert_unavailable(await act.signup(), "cache")
        _assert_unavailable(await act.login(email), "cache")
        _assert_unavailable(await act.upload_url(token), "cache")
        _assert_unavailable(await act.create_job(token, videos[1]), "cache")
        _assert_unavailable(await act.view(videos[1], token), "cache")
        for client in (stack.gateway, stack.gallery):
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["checks"]["cache"].startswith("error")
            assert health.json()["checks"]["database"] == "ok"

        # Same port, no data. The very first request of each kind succeeds: pooled
        # connections to the dead server are replaced, not failed.
        private_redis.start()
        assert (await act.signup()).status_code == 201
        assert (await act.login(email)).status_code == 200
        assert (await act.upload_url(token)).status_code == 201
        assert (await act.create_job(token, videos[1])).status_code == 201
        assert (await act.view(videos[1], token)).json() == {"counted": True}
        for client in (stack.gateway, stack.gallery):
            assert (await client.get("/health")).status_code == 200
        # The 503 view was not counted; the two counted ones were.
        await views.flush_views(stack.infra)
        async with stack.infra.sessions() as session:
            counts = [(await session.get(GalleryVideo, v.id)) for v in videos[:2]]
        assert [v.views for v in counts if v is not None] == [1, 1]


async def test_redis_cache_survives_a_restart_with_a_full_pool(
    private_redis: PrivateRedis,
) -> None:
    cache = RedisCache(private_redis.url, prefix="pool:")
    try:
        # Ten connections in the pool, all opened before the restart.
        await asyncio.gather(*(cache.incr(f"k{i}") for i in range(10)))
        private_redis.kill()
        with pytest.raises(CacheUnavailable):
            await cache.get("k0")
        # Once known down, a call still tries Redis but skips the backoff (0.7 s).
        started = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await cache.ping()
        assert time.monotonic() - started < 0.6  # the backoff alone would be 0.7 s
        private_redis.start()
        # Every pooled connection is stale; each is used once, concurrently.
        results = await asyncio.gather(*(cache.incr(f"k{i}") for i in range(10)))
        assert results == [1] * 10  # the data went with the server; no call failed
        assert await cache.set_if_absent("fresh", "1", ttl=60)
    finally:
        await cache.close()


async def test_counted_views_survive_redis_losing_its_data(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    settings = _settings(
        tmp_path, database_url, REDIS_URL=private_redis.url, REDIS_KEY_PREFIX="views:"
    )
    async with _stack(settings) as stack:
        video = await _seed_video(stack.infra, "owner")
        counted = []
        for i in range(6):
            async with stack.gallery_from(f"198.51.100.{i + 1}") as viewer:
                r = await viewer.post(f"/api/gallery/videos/{video.id}/views")
                assert r.status_code == 202, r.text
                counted.append(r.json()["counted"])
        assert counted == [True] * 6
        # Redis dies with everything in it before the flusher ran.
        private_redis.kill()
        private_redis.start()
        assert await views.flush_views(stack.infra) == 6
        async with stack.infra.sessions() as session:
            fresh = await session.get(GalleryVideo, video.id)
        assert fresh is not None
        assert fresh.views == 6
        # The dedup window restarted with Redis: a returning viewer counts again, and
        # the total only grows.
        async with stack.gallery_from("198.51.100.1") as viewer:
            r = await viewer.post(f"/api/gallery/videos/{video.id}/views")
        assert r.json() == {"counted": True}
        assert await views.flush_views(stack.infra) == 1


async def test_a_view_is_in_the_database_when_it_is_answered(
    tmp_path: Path, sqlite_url: str, private_redis: PrivateRedis
) -> None:
    settings = _settings(tmp_path, sqlite_url, REDIS_URL=private_redis.url)
    async with _stack(settings) as stack:
        video = await _seed_video(stack.infra, "owner")
        async with stack.gallery_from("192.0.2.7") as viewer:
            r = await viewer.post(f"/api/gallery/videos/{video.id}/views")
        assert r.json() == {"counted": True}
        # Read through a separate engine: committed, not just in this process.
        other = create_engine(sqlite_url)
        try:
            async with session_factory(other)() as session:
                rows = (await session.execute(GalleryViewLog.__table__.select())).all()
        finally:
            await other.dispose()
        assert [(row.video_id, row.views) for row in rows] == [(video.id, 1)]


# ------------------------------------------------------------------- PostgreSQL
async def test_an_unreachable_postgres_is_503_not_500(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens here
    settings = _settings(tmp_path, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/videoforge")
    async with _stack(settings) as stack:
        issuer = TokenIssuer.from_settings(settings, key=stack.infra.signing_key)
        token = issuer.issue_access("someone")
        responses = [
            await stack.gallery.get("/api/gallery/videos"),
            await stack.gallery.get(f"/api/gallery/videos/{uuid.uuid4()}"),
            await stack.gallery.post(
                f"/api/gallery/videos/{uuid.uuid4()}/views",
                headers={"Authorization": f"Bearer {token}"},
            ),
            await stack.gateway.post(
                "/api/auth/login", json={"email": "a@example.com", "password": PASSWORD}
            ),
            await stack.gateway.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}),
        ]
        for response in responses:
            _assert_unavailable(response, "database")
        # One warning per request, never a traceback.
        with structlog.testing.capture_logs() as logs:
            _assert_unavailable(await stack.gallery.get("/api/gallery/videos"), "database")
        errors = [e for e in logs if e["log_level"] in {"warning", "error"}]
        assert [(e["event"], e["dependency"]) for e in errors] == [
            ("dependency_unavailable", "database")
        ]
        assert "ConnectionRefusedError" in errors[0]["error"]
        assert "exc_info" not in errors[0]
        for client in (stack.gateway, stack.gallery):
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["checks"]["database"].startswith("error")


async def test_background_loops_log_a_database_outage_in_one_line_a_round(
    tmp_path: Path,
) -> None:
    """The gallery's loops (job events, lifecycle events, view flushes) keep trying while
    the database is down, each round one warning naming it: no traceback per round."""
    port = _free_port()  # nothing listens here
    settings = _settings(tmp_path, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/videoforge")
    infra = await build_infra(settings)
    try:
        stop = asyncio.Event()
        with structlog.testing.capture_logs() as logs:
            loops = [
                asyncio.create_task(run_event_consumer(infra, stop)),
                asyncio.create_task(run_lifecycle_delivery(infra, stop)),
                asyncio.create_task(views.run_view_flusher(infra, stop, interval=0.2)),
            ]
            await asyncio.sleep(1.5)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*loops), timeout=30)
    finally:
        await infra.aclose()
    failures = [e for e in logs if e["log_level"] in {"warning", "error", "critical"}]
    assert {e["event"] for e in failures} >= {
        "event_receive_failed",
        "lifecycle_delivery_failed",
        "views_flush_failed",
        "views_final_flush_failed",
    }
    for entry in failures:
        assert entry["log_level"] == "warning", entry
        assert entry["dependency"] == "database", entry
        assert "exc_info" not in entry, entry
        assert "Connect" in entry["error"] or "connect" in entry["error"], entry


class PrivatePostgres:
    """A PostgreSQL cluster of this test alone, stopped and started at will."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="vf-pg-outage-"))
        self.port = _free_port()
        self.as_user: list[str] = []
        import os

        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.workdir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _bin(self, name: str) -> str:
        found = shutil.which(name)
        if found:
            return found
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        assert candidates, f"PostgreSQL's {name} is not installed"
        return str(candidates[-1])

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, self._bin("pg_ctl"), "-D", str(self.workdir / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def init(self) -> None:
        data = str(self.workdir / "data")
        subprocess.run(
            [*self.as_user, self._bin("initdb"), "-U", "postgres", "-A", "trust", "-D", data],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -h 127.0.0.1 -c fsync=off"
        self._ctl("-w", "-l", str(self.workdir / "log"), "-o", options, "start")
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        """Immediate shutdown: every connection is cut, as in a crash or a failover."""
        self._ctl("-m", "immediate", "-w", "stop")
        _wait_port(self.port, up=False)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


async def test_postgres_restart_is_503_meanwhile_and_recovers_at_once(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{private_postgres.port}/")
    try:
        await admin.execute('CREATE DATABASE "videoforge"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{private_postgres.port}/videoforge"
    await asyncio.to_thread(migrations.upgrade, url)
    async with _stack(_settings(tmp_path, url)) as stack:
        video = await _seed_video(stack.infra, "owner")
        # Fill the pool with connections that the restart will cut.
        pages = await asyncio.gather(*(stack.gallery.get("/api/gallery/videos") for _ in range(5)))
        assert [p.status_code for p in pages] == [200] * 5

        await asyncio.to_thread(private_postgres.stop)
        _assert_unavailable(await stack.gallery.get("/api/gallery/videos"), "database")
        _assert_unavailable(await stack.gallery.get(f"/api/gallery/videos/{video.id}"), "database")
        assert (await stack.gallery.get("/health")).status_code == 503

        await asyncio.to_thread(private_postgres.start)
        pages = await asyncio.gather(*(stack.gallery.get("/api/gallery/videos") for _ in range(5)))
        assert [p.status_code for p in pages] == [200] * 5
        assert (await stack.gallery.get(f"/api/gallery/videos/{video.id}")).status_code == 200
        assert (await stack.gallery.get("/health")).status_code == 200


async def test_gateway_rate_limits_fail_closed_but_views_fail_open(
    private_redis: PrivateRedis,
) -> None:
    cache = RedisCache(private_redis.url, prefix="rl-outage:")
    limiter = RateLimiter(cache)
    try:
        await limiter.check(Action.LOGIN, ip="192.0.2.1", user="someone")
        private_redis.kill()
        for action in (Action.SIGNUP, Action.LOGIN, Action.JOB_CREATE, Action.IMPORT):
            with pytest.raises(CacheUnavailable):
                await limiter.check(action, ip="192.0.2.1", user="someone")
        # Views (and upload URLs) are the gallery's to count: nothing here, up or down.
        await limiter.check(Action.VIEW, ip="192.0.2.1", user="someone")
        await limiter.check(Action.UPLOAD_URL, ip="192.0.2.1", user="someone")
        # The gallery's view limit fails open with the cache down; its dedup answers 503.
        settings = load_settings(RATE_LIMITS="view=60:5")
        await limits.check(cache, settings, limits.VIEW, ip="192.0.2.1", user=None, fail_open=True)
        with pytest.raises(CacheUnavailable):
            await limits.check(cache, settings, limits.UPLOAD_URL, ip="192.0.2.1", user="x")
    finally:
        await cache.close()


async def test_a_database_bug_is_still_a_500(tmp_path: Path) -> None:
    """Only outages become 503: SQLite's "no such table" (here: a database that was never
    migrated) is a bug and stays a 500 with a logged traceback."""
    settings = _settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    async with _stack(settings) as stack:
        r = await stack.gallery.get("/api/gallery/videos")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"


def _from_asyncpg(**connect: Any) -> BaseException:
    """What asyncpg really raises when it cannot connect (refused, timed out)."""

    async def attempt() -> BaseException:
        try:
            await asyncpg.connect(host="127.0.0.1", user="postgres", **connect)
        except (OSError, TimeoutError) as exc:
            return exc
        raise AssertionError("connected")

    return asyncio.run(attempt())


def _sqlite_error(message: str) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    ("make", "outage"),
    [
        (lambda: asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (lambda: asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
        (lambda: asyncpg.AdminShutdownError("terminating connection"), True),
        (lambda: asyncpg.TooManyConnectionsError("too many clients"), True),
        (
            lambda: sa_exc.DBAPIError(
                "SELECT 1", {}, Exception("closed"), connection_invalidated=True
            ),
            True,
        ),
        (lambda: sa_exc.DBAPIError("SELECT 1", {}, Exception("syntax")), False),
        (lambda: sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")), True),
        (lambda: sa_exc.OperationalError("SELECT 1", {}, Exception("server closed")), True),
        (lambda: sa_exc.TimeoutError("QueuePool limit reached"), True),
        (lambda: _sqlite_error("database is locked"), True),
        (lambda: _sqlite_error("no such table: gallery_videos"), False),
        (lambda: _from_asyncpg(port=_free_port()), True),
        (lambda: _from_asyncpg(port=_free_port(), timeout=1e-9), True),
        # The same errors from anywhere else are not the database's.
        (lambda: ConnectionRefusedError(111, "Connect call failed"), False),
        (lambda: ValueError("a bug"), False),
    ],
)
def test_which_database_errors_are_outages(make: Any, outage: bool) -> None:
    assert is_connection_error(make()) is outage
    # Under another error (a rollback that failed after the first one): still found.
    wrapped = RuntimeError("rollback failed")
    wrapped.__context__ = make()
    assert is_connection_error(wrapped) is outage
