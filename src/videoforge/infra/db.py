"""Database: a typed declarative base, engines, sessions, connection-error checks.

SQLite (WAL) is the embedded default; PostgreSQL when configured. Nothing connects at
import time: :func:`create_engine` is called at start-up and the engine passed around.

One place commits: :func:`session_scope` (used by request dependencies and job steps)
commits on success and rolls back on error. Services only ``flush()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import CHAR, TypeDecorator

from videoforge.infra import tracing

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which stores naive) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class GUID(TypeDecorator[uuid.UUID]):
    """UUIDs stored as 32-char hex on every backend (portable, index-friendly)."""

    impl = CHAR(32)
    cache_ok = True

    def process_bind_param(self, value: uuid.UUID | str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).hex

    def process_result_value(self, value: str | None, dialect: Any) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(value)


class Base(DeclarativeBase):
    """Declarative base for every table; constraint names follow one convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: GUID()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, nullable=False)


#: Seconds to wait for a PostgreSQL connection (new, or free in the pool).
CONNECT_TIMEOUT_SECONDS = 5

# SQLite errors that say "try again" (a writer holds the lock, the file is briefly
# unreadable), unlike "no such table" and friends, which are bugs.
_SQLITE_TRANSIENT = ("database is locked", "unable to open database file", "disk i/o error")


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable or dropped the connection (a
    503: retry soon), as opposed to a bug or a bad statement (a 500).

    asyncpg raises ``OSError`` (refused, reset, timed out) unwrapped from connect and
    its own errors for a server that is starting or shutting down; SQLAlchemy wraps
    some of these and flags the ones that invalidated the connection.
    """
    import asyncpg  # used for isinstance only
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError):  # no pooled connection came free
            return True
        if isinstance(current, sa_exc.InterfaceError | sa_exc.OperationalError):
            # On SQLite these also mean bad parameters or a missing table: bugs.
            if not _is_sqlite_error(current.orig):
                return True
            if str(current.orig).lower().startswith(_SQLITE_TRANSIENT):
                return True
        if isinstance(
            current,
            asyncpg.PostgresConnectionError  # includes ConnectionDoesNotExistError
            | asyncpg.CannotConnectNowError
            | asyncpg.AdminShutdownError
            | asyncpg.CrashShutdownError
            | asyncpg.TooManyConnectionsError
            | asyncpg.InterfaceError,
        ):
            return True
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror) and _from_driver(
            current
        ):
            return True
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return False


async def wait_until_reachable(engine: AsyncEngine, stop: asyncio.Event, *, every: float) -> None:
    """Return once the database answers ``SELECT 1`` (or ``stop`` is set), trying every
    ``every`` seconds: for loops that should not take work while the database is down.
    Any answer but an outage's counts (what else is wrong is the caller's to find)."""
    from sqlalchemy import text

    while not stop.is_set():
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return
        except Exception as exc:
            if not is_connection_error(exc):
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def _is_sqlite_error(error: object) -> bool:
    import sqlite3

    return isinstance(error, sqlite3.Error)


def _from_driver(exc: BaseException) -> bool:
    """Raised inside the database driver or SQLAlchemy (not some other client's socket)."""
    import traceback

    return any(
        str(frame.f_globals.get("__name__", "")).startswith(("asyncpg", "sqlalchemy"))
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Build the async engine. SQLite gets WAL, foreign keys and a busy timeout."""
    if is_sqlite(url):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=echo,
            poolclass=NullPool,
            connect_args={"timeout": 30},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # Let SQLAlchemy's "begin" event below issue the BEGIN itself.
            dbapi_conn.isolation_level = None

        # aiosqlite opens transactions lazily; BEGIN IMMEDIATE on first write avoids
        # "database is locked" upgrade deadlocks between concurrent writers.
        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        tracing.instrument_engine(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        # While the server is down, fail fast (a 503) instead of holding the request:
        # asyncpg's own connect timeout is 60 s, the pool's wait 30 s.
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )
    _ping_when_idle(engine)
    tracing.instrument_engine(engine)
    return engine


#: A pooled connection unused this long is tested before it is handed out.
IDLE_PING_SECONDS = 2.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Test a pooled connection before use only when it sat idle in the pool.

    ``pool_pre_ping`` would cost a round trip on every checkout: on a busy pool that is
    a second query per request for nothing, since a connection used a moment ago is
    alive. One that idled (across a server restart, say) is pinged and, when dead,
    replaced before the request sees it (DisconnectionError makes the pool retry with a
    new connection). A busy connection that dies anyway fails its one statement (a 503)
    and SQLAlchemy invalidates the pool, so the next requests connect afresh.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_since(_: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:
            alive = False
        if not alive:
            raise DisconnectionError("pooled connection lost while idle")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The one place that commits: commit on success, roll back on any error."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


#: Execution options of a read: no transaction at all on PostgreSQL.
_READ_OPTIONS = {"isolation_level": "AUTOCOMMIT"}


@asynccontextmanager
async def read_scope(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for requests that only read (a listing, a job's status).

    On PostgreSQL its statements run outside a transaction: two round trips fewer per
    request (``BEGIN`` and ``COMMIT``), and each statement sees what was committed when
    it started, which READ COMMITTED (the default) gives every statement of a
    transaction anyway. On SQLite it is :func:`session_scope` (its transactions are how
    the engine orders readers and writers). Do not write in it: on PostgreSQL each
    write would be committed on its own, at once.
    """
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        async with session_scope(sessions) as session:
            yield session
        return
    async with sessions() as session:
        await session.connection(execution_options=_READ_OPTIONS)
        yield session
