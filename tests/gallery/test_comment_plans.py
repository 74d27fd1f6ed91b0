"""Comment lists stay fast on a busy video: on PostgreSQL with many comments, the first
page, the pinned comment and a deep cursor page each read a few rows through an index
(never a walk of every comment of the video)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, text

from videoforge.gallery.comments import repository
from videoforge.gallery.comments.repository import After, Viewer
from videoforge.infra.db import create_engine

from .plans import explain, rows_read, scans_of

ROWS = 20_000
PAGE = 20
VIDEO = uuid.UUID(int=7)
BASE = datetime(2026, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.postgres


async def test_comment_pages_read_a_page_of_rows(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO gallery_videos (id, user_id, title, description, visibility,"
                    " status, progress, renditions, views, version, created_at, updated_at)"
                    " VALUES (:v, 'owner', 't', '', 'public', 'ready', 0, '[]', 0, 1, now(),"
                    " now())"
                ).bindparams(v=VIDEO.hex)
            )
            await conn.execute(
                text(
                    "INSERT INTO gallery_comments (id, video_id, author_id, author_name, text,"
                    " status, deleted, pinned, replies_count, created_at, updated_at)"
                    " SELECT md5(g::text), :v, 'u' || (g % 300), 'U', 'text',"
                    " CASE WHEN g % 40 = 0 THEN 'held' ELSE 'approved' END, false, g = 5, 0,"
                    " :base + g * interval '1 second', now()"
                    " FROM generate_series(1, :rows) AS g"
                ).bindparams(v=VIDEO.hex, rows=ROWS, base=BASE)
            )
            await conn.execute(text("ANALYZE gallery_comments"))
        after = After(created_at=BASE + timedelta(seconds=ROWS // 10), id=uuid.UUID(int=0))
        for viewer in (
            Viewer(user_id=None, sees_all_held=False),
            Viewer(user_id="u7", sees_all_held=False),
            Viewer(user_id="owner", sees_all_held=True),
        ):
            statements: list[tuple[str, Select[Any]]] = [
                ("first", repository.top_level_stmt(VIDEO, viewer, descending=True)),
                ("deep", repository.top_level_stmt(VIDEO, viewer, descending=True, after=after)),
                ("oldest", repository.top_level_stmt(VIDEO, viewer, descending=False, after=after)),
                ("pinned", repository.pinned_stmt(VIDEO, viewer)),
            ]
            async with engine.connect() as conn:
                for label, stmt in statements:
                    plan = await explain(conn, stmt.limit(PAGE + 1))
                    scans = scans_of(plan, "gallery_comments")
                    assert scans, plan
                    assert all(n["Node Type"] != "Seq Scan" for n in scans), (label, viewer, plan)
                    read = rows_read(plan, "gallery_comments")
                    assert read <= 3 * PAGE, (label, viewer, read)
    finally:
        await engine.dispose()
