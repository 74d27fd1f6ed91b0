"""gallery_videos.search_document: the full-text document stored, on PostgreSQL
(owned by videoforge.gallery).

Until now the GIN index was on the expression ``to_tsvector(title || description)``.
A plan that walks the sort index and filters with the search then recomputed that
expression for every row it passed: about 11 µs a row, seconds at a million rows.
A stored generated column computes it once per write. The GIN index moves to the
column. SQLite keeps its FTS5 table; nothing changes there.

Adding a stored generated column rewrites the table under an exclusive lock: on a
large catalogue, run this migration in a maintenance window.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The document of migration 0002's expression index, now stored.
DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(description, ''))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE gallery_videos ADD COLUMN search_document tsvector "
        f"GENERATED ALWAYS AS ({DOCUMENT}) STORED"
    )
    op.execute(
        "CREATE INDEX ix_gallery_videos_search ON gallery_videos USING gin (search_document)"
    )
    op.execute("DROP INDEX ix_gallery_videos_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE INDEX ix_gallery_videos_fts ON gallery_videos USING gin ({DOCUMENT})")
    op.execute("DROP INDEX ix_gallery_videos_search")
    op.execute("ALTER TABLE gallery_videos DROP COLUMN search_document")
