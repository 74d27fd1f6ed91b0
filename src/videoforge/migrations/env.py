"""Alembic environment: async engine, batch mode on SQLite, all models' metadata."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from videoforge.infra.db import Base, create_engine
from videoforge.models import import_all_models

import_all_models()
config = context.config
target_metadata = Base.metadata

#: Serialises concurrent `videoforge migrate` runs on PostgreSQL (several tasks of a
#: fresh deployment start at once); released when the migration transaction ends.
MIGRATION_LOCK_ID = 0x5644_4D49  # "VDMI"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        context.run_migrations()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    from videoforge.migrations import run_sync

    run_sync(_run_async())
