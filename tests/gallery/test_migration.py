"""Migrations 0002 and 0006 really create and really drops the gallery's tables and search index."""

from __future__ import annotations

import asyncio

from videoforge import migrations
from videoforge.infra.db import create_engine

from ..migration_diff import tables_and_indexes

GALLERY_TABLES = {
    "gallery_videos",
    "gallery_video_jobs",
    "gallery_uploads",
    "gallery_video_views_daily",
    "gallery_pending_deletions",
}


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    return await tables_and_indexes(url, {"gallery_videos"})


def test_upgrade_and_downgrade(database_url: str) -> None:
    tables, indexes = asyncio.run(_tables_and_indexes(database_url))
    assert tables >= GALLERY_TABLES
    assert {"ix_gallery_videos_listing", "ix_gallery_videos_owner"} <= indexes
    if database_url.startswith("postgresql"):
        assert "ix_gallery_videos_search" in indexes
        assert "ix_gallery_videos_fts" not in indexes
    else:
        assert "gallery_videos_fts" in tables

    migrations.downgrade(database_url, "0001")
    tables, _ = asyncio.run(_tables_and_indexes(database_url))
    assert not (tables & GALLERY_TABLES)
    assert "gallery_videos_fts" not in tables

    migrations.upgrade(database_url)
    tables, _ = asyncio.run(_tables_and_indexes(database_url))
    assert tables >= GALLERY_TABLES


async def _search_after(url: str, word: str) -> list[str]:
    from videoforge.gallery.search import ListParams, list_videos
    from videoforge.infra.db import session_factory

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            result = await list_videos(session, None, ListParams(q=word))
        return [v.title for v in result.items]
    finally:
        await engine.dispose()


async def _insert_video(url: str, title: str) -> None:
    import uuid

    import sqlalchemy as sa

    from videoforge.infra.db import utcnow

    # Only the columns of the schema at 0006 (the ORM model would name later ones too).
    table = sa.table(
        "gallery_videos",
        *(
            sa.column(name)
            for name in (
                "id",
                "user_id",
                "title",
                "description",
                "visibility",
                "status",
                "progress",
                "renditions",
                "views",
                "version",
                "created_at",
                "updated_at",
            )
        ),
    )
    now = utcnow()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                table.insert().values(
                    id=uuid.uuid4().hex,
                    user_id="u1",
                    title=title,
                    description="made before 0007",
                    visibility="public",
                    status="ready",
                    progress=0,
                    renditions="[]",
                    views=0,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
    finally:
        await engine.dispose()


def test_videos_made_before_the_stored_document_are_found(database_url: str) -> None:
    """0007 computes the stored document of the rows already there (PostgreSQL), and
    its downgrade brings back the expression index with search still working."""
    migrations.downgrade(database_url, "0006")
    asyncio.run(_insert_video(database_url, "Lighthouse keeper"))
    migrations.upgrade(database_url)
    assert asyncio.run(_search_after(database_url, "lighthou")) == ["Lighthouse keeper"]
    assert asyncio.run(_search_after(database_url, "before")) == ["Lighthouse keeper"]
    if database_url.startswith("postgresql"):
        migrations.downgrade(database_url, "0006")
        _, indexes = asyncio.run(_tables_and_indexes(database_url))
        assert "ix_gallery_videos_fts" in indexes
        assert "ix_gallery_videos_search" not in indexes
        migrations.upgrade(database_url)
