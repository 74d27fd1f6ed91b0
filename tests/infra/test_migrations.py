"""The migration chain on fresh databases made here: upgrade from nothing, downgrade to
base, upgrade again; and the start-up check that refuses an un-migrated database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from videoforge import migrations
from videoforge.infra.db import Base, create_engine
from videoforge.infra.queue.models import QueueMessageRow
from videoforge.migrations import NotMigrated, check_migrated


@pytest.fixture
def empty_postgres(postgres_admin_url: str) -> Iterator[str]:
    """A brand-new, empty PostgreSQL database (not cloned from the migrated template)."""
    name = f"vf_mig_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(postgres_admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'videoforge.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"empty_{request.param}"))


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda c: inspect(c).get_table_names())
                return set(names)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _expected_tables() -> set[str]:
    from videoforge.models import import_all_models

    import_all_models()
    return set(Base.metadata.tables)


def test_upgrade_downgrade_round_trip(empty_database: str) -> None:
    head = migrations.head_revision()
    assert migrations.current(empty_database) is None

    migrations.upgrade(empty_database)
    assert migrations.current(empty_database) == head
    tables = _tables(empty_database)
    assert "queue_messages" in tables
    assert _expected_tables() <= tables  # every model's table exists

    migrations.upgrade(empty_database)  # again: a no-op
    assert migrations.current(empty_database) == head

    migrations.downgrade(empty_database, "base")
    assert migrations.current(empty_database) is None
    assert _tables(empty_database) <= {"alembic_version"}  # everything really dropped

    migrations.upgrade(empty_database)
    assert migrations.current(empty_database) == head
    assert _expected_tables() <= _tables(empty_database)


# On SQLite, autogenerate cannot compare the gallery's PostgreSQL-only lower(title) index
# (0013) and warns; this test compares the queue table only.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_queue_migration_matches_the_model(empty_database: str) -> None:
    """The migrations (0001, and 0012's attributes column) create exactly what the
    QueueMessageRow model describes (types, index, constraints): autogenerate finds
    nothing to add for the queue table."""
    migrations.upgrade(empty_database)

    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        changes = compare_metadata(ctx, QueueMessageRow.metadata)
        return [c for c in changes if "queue_messages" in repr(c)]

    async def run() -> list[object]:
        engine = create_engine(empty_database)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(diff)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == []
    migrations.downgrade(empty_database, "base")
    assert "queue_messages" not in _tables(empty_database)


async def test_check_migrated_refuses_an_unmigrated_database(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        with pytest.raises(NotMigrated, match="videoforge migrate"):
            await check_migrated(engine)

        migrations.upgrade(empty_database, "0001")  # part of the way is not enough
        with pytest.raises(NotMigrated, match="videoforge migrate"):
            await check_migrated(engine)

        migrations.upgrade(empty_database)
        await check_migrated(engine)  # at head: fine
    finally:
        await engine.dispose()


async def test_sqlite_engines_use_wal(empty_sqlite: str) -> None:
    engine = create_engine(empty_sqlite)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert str(mode).lower() == "wal"
        assert foreign_keys == 1
        # The database file lives where the URL says (its directory was created).
        assert Path(empty_sqlite.split(":///", 1)[1]).exists()
    finally:
        await engine.dispose()


def test_concurrent_upgrades_on_postgres_serialise(postgres_admin_url: str, tmp_path: Path) -> None:
    """Two `videoforge migrate` processes at once (a fresh deployment's tasks) both succeed."""
    import asyncio
    import os
    import subprocess
    import sys
    import uuid

    import asyncpg

    from videoforge import migrations

    name = f"vf_race_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"{postgres_admin_url.rsplit('/', 1)[0]}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "VIDEOFORGE_DATA_DIR": str(tmp_path)}
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "videoforge", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        async_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        assert migrations.current(async_url) == migrations.head_revision()
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
