"""Whether a migration creates exactly what the models describe: autogenerate's diff,
restricted to the tables one migration owns, the tables and indexes a database has, and
the round trip down and up again."""

from __future__ import annotations

import asyncio
from collections.abc import Set

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from videoforge import migrations
from videoforge.infra.db import Base, create_engine
from videoforge.models import import_all_models


def diff_and_tables(
    url: str, tables: Set[str], *, referenced: Set[str] = frozenset()
) -> tuple[list[object], set[str]]:
    """What autogenerate would change for ``tables``, and every table the database has.

    Only these tables' definitions are compared: the rest of the schema is other
    migrations' business. ``referenced`` tables are there only as the targets of their
    foreign keys (not compared)."""
    import_all_models()
    mine = MetaData(naming_convention=Base.metadata.naming_convention)
    for name in sorted(tables | referenced):
        Base.metadata.tables[name].to_metadata(mine)

    def only_mine(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in tables

    def mine_in_metadata(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        table = getattr(obj, "table", None)
        table_name = name if type_ == "table" else getattr(table, "name", None)
        return table_name is None or table_name in tables

    def read(conn: Connection) -> tuple[list[object], set[str]]:
        opts = {"compare_type": True, "include_name": only_mine, "include_object": mine_in_metadata}
        ctx = MigrationContext.configure(conn, opts=opts)
        return compare_metadata(ctx, mine), set(inspect(conn).get_table_names())

    async def run() -> tuple[list[object], set[str]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def tables_and_indexes(url: str, indexed: Set[str]) -> tuple[set[str], set[str]]:
    """Every table the database has, and the names of the indexes on those of
    ``indexed`` that exist (on PostgreSQL, expression indexes too)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: Connection) -> tuple[set[str], set[str]]:
                inspector = inspect(sync_conn)
                tables = set(inspector.get_table_names())
                indexes: set[str] = set()
                for table in indexed & tables:
                    indexes |= {str(i["name"]) for i in inspector.get_indexes(table)}
                return tables, indexes

            tables, indexes = await conn.run_sync(read)
            if engine.dialect.name == "postgresql":
                rows = await conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = ANY(:tables)"),
                    {"tables": sorted(indexed)},
                )
                indexes |= {str(r[0]) for r in rows}
            return tables, indexes
    finally:
        await engine.dispose()


def assert_migration_matches_models(
    url: str, tables: Set[str], *, previous: str, referenced: Set[str] = frozenset()
) -> None:
    """At head ``tables`` are exactly as modelled; downgrading to ``previous`` drops them
    all, and upgrading again brings them back."""
    changes, present = diff_and_tables(url, tables, referenced=referenced)
    assert changes == []
    assert present >= tables
    migrations.downgrade(url, previous)
    _, present = diff_and_tables(url, tables, referenced=referenced)
    assert not (present & tables)
    migrations.upgrade(url)
    assert diff_and_tables(url, tables, referenced=referenced)[1] >= tables
