"""gallery_videos: the title sort is case-insensitive (owned by videoforge.gallery).

"Title A-Z" orders by ``lower(title)``, so on PostgreSQL the listing's title index
moves from the raw column to the expression (an index on ``title`` itself no longer
serves the sort). SQLite keeps its column index: its catalogues are small and local,
and SQLAlchemy cannot reflect SQLite expression indexes.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_gallery_videos_title_lower "
        "ON gallery_videos (visibility, status, lower(title), id)"
    )
    op.drop_index("ix_gallery_videos_title", table_name="gallery_videos")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_gallery_videos_title", "gallery_videos", ["visibility", "status", "title", "id"]
    )
    op.drop_index("ix_gallery_videos_title_lower", table_name="gallery_videos")
