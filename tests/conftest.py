"""Test infrastructure: real PostgreSQL, Redis and an AWS-compatible server on loopback.

- PostgreSQL: the server on 127.0.0.1:5432 when it answers, otherwise a private one
  started here (initdb + pg_ctl on a free port). Never silently skipped.
- Redis: 127.0.0.1:6379 when it answers, otherwise a private ``redis-server``.
- S3/SQS/Cognito: ``moto`` as a real HTTP server on a free loopback port.

Databases: ``database_url`` gives each test a fresh, migrated database, parametrised
over SQLite and PostgreSQL (PostgreSQL databases are cloned from a migrated template).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
# Tests never read the developer's .env or the real data dir.
os.environ["VIDEOFORGE_ENV"] = "test"
#: /metrics on a service port needs this bearer token.
METRICS_TOKEN = "test-metrics-token-0123456789"
os.environ["METRICS_TOKEN"] = METRICS_TOKEN


#: Set to 1 to start private PostgreSQL/Redis even when shared ones answer (checks the
#: path CI machines without those services take).
PRIVATE_SERVERS = os.environ.get("VIDEOFORGE_TEST_PRIVATE_SERVERS") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reachable("127.0.0.1", port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# ---------------------------------------------------------------- PostgreSQL
def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return str(candidates[-1])


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A superuser URL (sync form, no driver) to a running PostgreSQL."""
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    if not PRIVATE_SERVERS and _reachable("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    workdir = Path(tempfile.mkdtemp(prefix="vf-pg-"))
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(workdir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = workdir / "data"
    subprocess.run(
        [*as_user, _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(workdir / "log"),
            "-o",
            f"-p {port} -k {workdir} -h 127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        _wait_port(port)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


async def _pg_exec(admin_url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _pg_url_for(admin_url: str, dbname: str) -> str:
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{dbname}".replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """A migrated template database; tests clone it."""
    from videoforge import migrations

    name = f"vf_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_exec(postgres_admin_url, f'CREATE DATABASE "{name}"'))
    migrations.upgrade(_pg_url_for(postgres_admin_url, name))
    try:
        yield name
    finally:
        asyncio.run(_pg_exec(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database (async URL) for one test."""
    name = f"vf_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(
        _pg_exec(postgres_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    )
    try:
        yield _pg_url_for(postgres_admin_url, name)
    finally:
        asyncio.run(_pg_exec(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -------------------------------------------------------------------- SQLite
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from videoforge import migrations

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrations.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database (async URL) for one test."""
    path = tmp_path / "videoforge.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[object]:
    from videoforge.infra.db import create_engine

    eng = create_engine(database_url, pool_size=5)
    try:
        yield eng
    finally:
        await eng.dispose()


# --------------------------------------------------------------------- Redis
@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    if not PRIVATE_SERVERS and _reachable("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------- moto
@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real AWS-compatible HTTP server (S3, SQS, Cognito) on a loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names of buckets, queues, users."""
    return uuid.uuid4().hex[:10]


# ------------------------------------------------------------------- test tiers
#: Fixtures that reach a server or a database: a test using one is an integration test.
_SERVER_FIXTURES = frozenset(
    {
        "postgres_admin_url",
        "postgres_url",
        "postgres_template",
        "sqlite_template",
        "sqlite_url",
        "database_url",
        "engine",
        "redis_url",
        "moto_endpoint",
        # These pick one of the above with request.getfixturevalue (not seen statically).
        "backend_settings",
        "cache_hook",
        "stack_env",
        "settings_extra",
        "empty_database",
        "queue_backend",
    }
)
#: Directories and modules whose tests run ffmpeg, start processes or a browser.
_INTEGRATION_PATHS = (
    "browser/",
    "contract/",
    "infra/cache/",
    "infra/queue/",
    "deploy/",
    "integration/",
    "processor/media/",
    "processor/worker/",
    "test_cli.py",
    "test_embedded.py",
    "ops/test_workers.py",
    "ops/test_outages.py",
    "ops/test_http.py",
    "infra/storage/test_s3.py",
)
#: Parameter values that select a real backend in a parametrised fixture.
_SERVER_PARAMS = frozenset({"s3", "sqs", "postgres", "redis", "db-postgres", "db-sqlite", "sqlite"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test ``unit`` (no server, database, ffmpeg or child process: ``make
    test-fast``) or ``integration`` (everything else); ``make test`` runs both."""
    root = Path(__file__).parent
    for item in items:
        relative = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        fixtures = set(getattr(item, "fixturenames", ()))
        slow = item.get_closest_marker("slow") or item.get_closest_marker("browser")
        callspec = getattr(item, "callspec", None)
        params = {str(v) for v in callspec.params.values()} if callspec is not None else set()
        if (
            slow
            or fixtures & _SERVER_FIXTURES
            or params & _SERVER_PARAMS
            or relative.startswith(_INTEGRATION_PATHS)
        ):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
