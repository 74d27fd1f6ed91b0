"""Migration 0003 creates the processing tables and its downgrade really drops them."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from videoforge import migrations
from videoforge.infra.db import create_engine


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: object) -> tuple[set[str], set[str]]:
                insp = inspect(sync_conn)
                tables = set(insp.get_table_names())
                indexes = set()
                for table in {"jobs", "media_assets"} & tables:
                    indexes |= {str(i["name"]) for i in insp.get_indexes(table)}
                return tables, indexes

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


def test_downgrade_drops_and_upgrade_recreates(database_url: str) -> None:
    tables, indexes = asyncio.run(_tables_and_indexes(database_url))
    assert {"jobs", "media_assets"} <= tables
    assert {"ix_jobs_user_id_created_at", "ix_jobs_status_enqueued_at"} <= indexes

    migrations.downgrade(database_url, "0002")
    tables, _ = asyncio.run(_tables_and_indexes(database_url))
    assert "jobs" not in tables
    assert "media_assets" not in tables

    migrations.upgrade(database_url, "0003")
    tables, indexes = asyncio.run(_tables_and_indexes(database_url))
    assert {"jobs", "media_assets"} <= tables
    assert "ix_media_assets_job_id" in indexes
