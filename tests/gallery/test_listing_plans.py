"""Listings stay fast at scale: on PostgreSQL with many rows, every listing page (any
sort, anonymous or signed in, deep in the cursor chain) reads a few rows through an
index — never a scan and sort of the whole table."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from videoforge.gallery.models import GalleryVideo
from videoforge.gallery.schemas import VideoSort
from videoforge.gallery.search import ListParams, build_listing, encode_cursor
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import create_engine

from .plans import explain, insert_ready_videos, scans_of

ROWS = 30_000
PER_PAGE = 20

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("sort", list(VideoSort), ids=lambda s: s.value)
async def test_cursor_pages_use_indexes(postgres_url: str, sort: VideoSort) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO gallery_videos (id, user_id, title, description, visibility,"
                    " status, progress, renditions, views, version, created_at, updated_at)"
                    " SELECT md5(g::text), 'user' || (g % 500), 'title ' || (g % 7919),"
                    " 'description', CASE WHEN g % 10 = 0 THEN 'private' ELSE 'public' END,"
                    " CASE WHEN g % 17 = 0 THEN 'processing' ELSE 'ready' END, 0, '[]',"
                    " g % 1000, 1, now() - g * interval '1 second', now()"
                    " FROM generate_series(1, :rows) AS g"
                ).bindparams(rows=ROWS)
            )
            await conn.execute(text("ANALYZE gallery_videos"))
        async with engine.connect() as conn:
            anchor_id = uuid.UUID(hex=(await conn.execute(text("SELECT md5('15000')"))).scalar())
            row = (
                await conn.execute(select(GalleryVideo).where(GalleryVideo.id == anchor_id))
            ).one()
            anchor = GalleryVideo(**{c.key: getattr(row, c.key) for c in GalleryVideo.__table__.c})
            for principal in (None, Principal(user_id="user7")):
                params = ListParams(
                    sort=sort, per_page=PER_PAGE, cursor=encode_cursor(sort, anchor)
                )
                query = build_listing("postgresql", principal, params)
                plan = await explain(conn, query.page_stmt)
                scans = scans_of(plan, "gallery_videos")
                assert scans, plan
                # Index scans (a bitmap scan of the owner's own few videos is fine), and
                # few rows touched, counting those a filter threw away.
                assert all(n["Node Type"] != "Seq Scan" for n in scans), principal
                rows_read = sum(
                    (
                        int(n["Actual Rows"])
                        + int(n.get("Rows Removed by Filter", 0))
                        + int(n.get("Rows Removed by Index Recheck", 0))
                    )
                    * int(n["Actual Loops"])
                    for n in scans
                )
                assert rows_read <= 10 * PER_PAGE, (principal, rows_read)
    finally:
        await engine.dispose()


async def test_the_lifecycle_loops_due_announcements_read_the_partial_index(
    postgres_url: str,
) -> None:
    """Every round of the lifecycle loop asks which announcements are due: with many
    videos and none pending it must read the small partial index, not the table."""
    from datetime import UTC, datetime

    from videoforge.gallery.publishing import due_statement

    engine = create_engine(postgres_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await insert_ready_videos(conn, ROWS)
            await conn.execute(text("ANALYZE gallery_videos"))
        async with engine.connect() as conn:
            plan = await explain(conn, due_statement(datetime.now(UTC)))
        scans = scans_of(plan, "gallery_videos")
        assert scans, plan
        assert all(n["Node Type"] != "Seq Scan" for n in scans), plan
        assert {n.get("Index Name") for n in scans} == {"ix_gallery_videos_publish_pending"}
    finally:
        await engine.dispose()
