"""Migration 0003 creates the processing tables and its downgrade really drops them."""

from __future__ import annotations

import asyncio

from videoforge import migrations

from ..migration_diff import tables_and_indexes


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    return await tables_and_indexes(url, {"jobs", "media_assets"})


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
