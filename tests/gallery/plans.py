"""PostgreSQL query plans of the statements the gallery builds, for the tests that hold
listings to index scans at scale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection

_READY_VIDEOS = text(
    "INSERT INTO gallery_videos (id, user_id, title, description, visibility, status,"
    " progress, renditions, views, version, created_at, updated_at)"
    " SELECT md5('v' || g), :owner, 't', '', 'public', 'ready', 0, '[]', 0, 1, now(), now()"
    " FROM generate_series(1, :n) AS g"
)


async def insert_ready_videos(conn: AsyncConnection, n: int, owner: str = "owner") -> None:
    """``n`` public ready videos of ``owner``, the g-th with id ``md5('v' || g)``."""
    await conn.execute(_READY_VIDEOS.bindparams(n=n, owner=owner))


async def explain(conn: AsyncConnection, stmt: Select[Any]) -> dict[str, Any]:
    """The top node of ``EXPLAIN (ANALYZE, FORMAT JSON)`` of ``stmt``, its values inlined
    (a prepared statement's generic plan would not be the one a page gets)."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = (await conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql))).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def scans_of(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """Every node of ``plan`` that reads ``table``."""
    return [node for node in _nodes(plan) if node.get("Relation Name") == table]


def rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows the scans of ``table`` in ``plan`` read: those returned and those filtered
    out, over every loop."""
    return sum(
        (int(n["Actual Rows"]) + int(n.get("Rows Removed by Filter", 0))) * int(n["Actual Loops"])
        for n in scans_of(plan, table)
    )


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
