"""Alembic migrations, run by ``videoforge migrate`` (and by ``serve`` on first start).

One linear chain for the whole platform; each service's tables come in their own
revision (queue, gallery, processing, accounts) so the owner is obvious.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migration chain must have one head, has {heads}"
    return heads[0]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, even when called from inside a
    running event loop (an async test fixture, ``serve``'s start-up): then it runs in
    a fresh loop on a helper thread, since ``asyncio.run`` refuses to nest."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrations") as pool:
        return pool.submit(asyncio.run, coro).result()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade the database (sync entry point; runs the async engine inside)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Downgrade the database to ``revision`` (``"base"`` drops every table)."""
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    from sqlalchemy import text

    from videoforge.infra.db import create_engine

    async def _read() -> str | None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                try:
                    row = (
                        await conn.execute(text("SELECT version_num FROM alembic_version"))
                    ).first()
                except Exception:
                    return None
                return str(row[0]) if row else None
        finally:
            await engine.dispose()

    return run_sync(_read())


class NotMigrated(RuntimeError):
    """The database schema is missing or older than this code."""


async def check_migrated(engine: AsyncEngine) -> None:
    """Refuse to start on an un-migrated database, with a message that says what to do."""
    head = head_revision()
    async with engine.connect() as conn:
        try:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
        except Exception:
            row = None
    current = row[0] if row else None
    if current != head:
        raise NotMigrated(
            f"database schema is at {current or 'nothing'} but this code needs {head}: "
            "run `videoforge migrate` first"
        )
