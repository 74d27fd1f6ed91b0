"""Migration 0016 creates exactly what the playlist models describe
(autogenerate finds nothing to change for their tables), and drops them again."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from videoforge import migrations
from videoforge.infra.db import Base, create_engine
from videoforge.models import import_all_models

TABLES = {"gallery_playlists", "gallery_playlist_items"}


def _only_mine(name: str | None, type_: str, parent_names: object) -> bool:
    return type_ != "table" or name in TABLES


def _mine_in_metadata(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    table = getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", None)
    return table_name is None or table_name in TABLES


def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    import_all_models()

    # Only these tables' definitions: the rest of the schema is other migrations' business.
    mine = MetaData(naming_convention=Base.metadata.naming_convention)
    # gallery_videos only as the target of the items' foreign key (not compared).
    for name in sorted(TABLES | {"gallery_videos"}):
        Base.metadata.tables[name].to_metadata(mine)

    def read(conn: Connection) -> tuple[list[object], set[str]]:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": _only_mine,
                "include_object": _mine_in_metadata,
            },
        )
        return compare_metadata(ctx, mine), set(inspect(conn).get_table_names())

    async def run() -> tuple[list[object], set[str]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_the_migration_matches_the_models(database_url: str) -> None:
    changes, tables = _diff_and_tables(database_url)
    assert changes == []
    assert tables >= TABLES
    migrations.downgrade(database_url, "0015")
    _, tables = _diff_and_tables(database_url)
    assert not (tables & TABLES)
    migrations.upgrade(database_url)
    assert _diff_and_tables(database_url)[1] >= TABLES
