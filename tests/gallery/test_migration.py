"""Migrations 0002 and 0006 really create and really drops the gallery's tables and search index."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text

from videoforge import migrations
from videoforge.infra.db import create_engine

GALLERY_TABLES = {
    "gallery_videos",
    "gallery_video_jobs",
    "gallery_uploads",
    "gallery_video_views_daily",
    "gallery_pending_deletions",
}


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: object) -> tuple[set[str], set[str]]:
                inspector = inspect(sync_conn)
                tables = set(inspector.get_table_names())
                indexes = set()
                if "gallery_videos" in tables:
                    indexes = {i["name"] for i in inspector.get_indexes("gallery_videos")}
                return tables, indexes

            tables, indexes = await conn.run_sync(read)
            if engine.dialect.name == "postgresql":
                rows = await conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'gallery_videos'")
                )
                indexes |= {r[0] for r in rows}
            return tables, indexes
    finally:
        await engine.dispose()


def test_upgrade_and_downgrade(database_url: str) -> None:
    tables, indexes = asyncio.run(_tables_and_indexes(database_url))
    assert tables >= GALLERY_TABLES
    assert {"ix_gallery_videos_listing", "ix_gallery_videos_owner"} <= indexes
    if database_url.startswith("postgresql"):
        assert "ix_gallery_videos_fts" in indexes
    else:
        assert "gallery_videos_fts" in tables

    migrations.downgrade(database_url, "0001")
    tables, _ = asyncio.run(_tables_and_indexes(database_url))
    assert not (tables & GALLERY_TABLES)
    assert "gallery_videos_fts" not in tables

    migrations.upgrade(database_url)
    tables, _ = asyncio.run(_tables_and_indexes(database_url))
    assert tables >= GALLERY_TABLES
