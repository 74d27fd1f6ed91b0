"""Alembic migrations, run by ``videoforge migrate`` (and by ``serve`` on first start).

One linear chain for the whole platform; each service's tables come in their own
revision (queue, gallery, processing, accounts) so the owner is obvious.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migration chain must have one head, has {heads}"
    return heads[0]


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade the database (sync entry point; runs the async engine inside)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    import asyncio

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

    return asyncio.run(_read())
