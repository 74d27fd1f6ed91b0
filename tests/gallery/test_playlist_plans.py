"""Playlist pages stay fast at the 10,000-entry cap: on PostgreSQL the first page, a
deep cursor page and the thumbnail lookup of a playlist each read a few rows through
an index (never a walk of every entry)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from videoforge.gallery.playlists import repository
from videoforge.gallery.playlists.repository import After
from videoforge.infra.db import create_engine

from .plans import explain, insert_ready_videos, rows_read, scans_of

ENTRIES = 10_000
PAGE = 50
PLAYLIST = uuid.UUID(int=9)
OTHER = uuid.UUID(int=10)

pytestmark = pytest.mark.postgres


async def test_playlist_pages_read_a_page_of_rows(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await insert_ready_videos(conn, ENTRIES)
            # Two playlists: the long one, and another whose rows share the order index.
            await conn.execute(
                text(
                    "INSERT INTO gallery_playlists (id, user_id, owner_name, kind, title,"
                    " description, visibility, created_at, updated_at) VALUES"
                    " (:p, 'owner', 'O', 'regular', 'Long', '', 'public', now(), now()),"
                    " (:q, 'owner', 'O', 'regular', 'Other', '', 'public', now(), now())"
                ).bindparams(p=PLAYLIST.hex, q=OTHER.hex)
            )
            await conn.execute(
                text(
                    "INSERT INTO gallery_playlist_items (id, playlist_id, video_id, position,"
                    " added_at) SELECT md5('i' || g || p), p, md5('v' || g), g * 1024.0, now()"
                    " FROM generate_series(1, :n) AS g, (VALUES (:p), (:q)) AS lists(p)"
                ).bindparams(n=ENTRIES, p=PLAYLIST.hex, q=OTHER.hex)
            )
            await conn.execute(text("ANALYZE"))
        deep = After(position=9_000 * 1024.0, id=uuid.UUID(int=0), ordinal=9_000)
        statements = [
            ("first page", repository.page_stmt(PLAYLIST, None, PAGE + 1), PAGE + 1),
            ("deep page", repository.page_stmt(PLAYLIST, deep, PAGE + 1), PAGE + 1),
            ("thumbnails", repository.first_videos_stmt([PLAYLIST], 5), 5),
            ("thumbnails of two", repository.first_videos_stmt([PLAYLIST, OTHER], 5), 10),
        ]
        async with engine.connect() as conn:
            for label, stmt, wanted in statements:
                plan = await explain(conn, stmt)
                scans = scans_of(plan, "gallery_playlist_items")
                assert scans, plan
                assert all(n["Node Type"] != "Seq Scan" for n in scans), (label, plan)
                read = rows_read(plan, "gallery_playlist_items")
                assert read <= 2 * wanted, (label, read)
    finally:
        await engine.dispose()
