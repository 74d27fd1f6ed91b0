"""Migration 0016 creates exactly what the playlist models describe
(autogenerate finds nothing to change for their tables), and drops them again."""

from __future__ import annotations

from ..migration_diff import assert_migration_matches_models

TABLES = {"gallery_playlists", "gallery_playlist_items"}


def test_the_migration_matches_the_models(database_url: str) -> None:
    # gallery_videos only as the target of the items' foreign key.
    assert_migration_matches_models(
        database_url, TABLES, previous="0015", referenced={"gallery_videos"}
    )
