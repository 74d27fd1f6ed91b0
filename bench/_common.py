"""What the database benchmarks share: a throwaway PostgreSQL database on the local
server, the median of repeated runs, and the JSON plan of a statement the gallery builds.

The scripts run as ``python bench/<name>.py``, so this module is imported by its bare
name (``import _common``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from videoforge.migrations import upgrade

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def create_database(prefix: str = "vf_bench") -> str:
    """A new, empty database on the local server (``{prefix}_<random>``)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(prefix: str = "vf_bench") -> Iterator[str]:
    """The URL of a new database migrated to head; dropped afterwards, whatever happens."""
    name = asyncio.run(create_database(prefix))
    url = f"{SERVER}/{name}"
    print(f"database {name}", flush=True)
    started = time.perf_counter()
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(drop_database(name))
        print(f"\ndropped {name}; {time.perf_counter() - started:.0f} s in all")


async def median_ms(fn: Callable[[], Awaitable[int]], repeat: int) -> tuple[float, int]:
    """The median time of ``repeat`` calls of ``fn`` in ms, and the rows the last returned."""
    times: list[float] = []
    rows = 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, rows


def inline_sql(engine: AsyncEngine, stmt: Select[Any]) -> str:
    """``stmt`` as SQL with its values written in, so EXPLAIN plans what a page runs."""
    return str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


async def explain_json(
    engine: AsyncEngine, stmt: Select[Any], options: str = "ANALYZE, BUFFERS"
) -> dict[str, Any]:
    """``EXPLAIN ({options}, FORMAT JSON)`` of ``stmt``: the document's one entry, with
    its ``Plan`` tree, ``Planning Time`` and ``Execution Time``."""
    sql = inline_sql(engine, stmt)
    async with engine.connect() as conn:
        raw = (await conn.execute(text(f"EXPLAIN ({options}, FORMAT JSON) {sql}"))).scalar_one()
    document = raw if isinstance(raw, list) else json.loads(raw)
    top: dict[str, Any] = document[0]
    return top


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``node`` and every node below it."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def scan_summary(node: dict[str, Any], top: dict[str, Any]) -> str:
    """One scan node of an :func:`explain_json` document ``top``: what it read how."""
    return (
        f"{node['Node Type']} on {node.get('Index Name')}, rows {node['Actual Rows']},"
        f" removed by filter {node.get('Rows Removed by Filter', 0)}, buffers"
        f" {node.get('Shared Hit Blocks', 0) + node.get('Shared Read Blocks', 0)},"
        f" execution {top['Execution Time']:.2f} ms"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
