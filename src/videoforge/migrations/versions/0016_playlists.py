"""gallery_playlists and gallery_playlist_items: playlists and Watch later (owned by
videoforge.gallery).

Items hang off their playlist and their video with ON DELETE CASCADE (SQLite engines
turn foreign keys on): deleting either removes the entries. A partial unique index
keeps one Watch later per user. Items are read in ``(playlist_id, position, id)``
order through one index (keyset pages).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gallery_playlists",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("owner_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(150), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_playlists"),
    )
    op.create_index(
        "ix_gallery_playlists_user", "gallery_playlists", ["user_id", "created_at", "id"]
    )
    op.create_index(
        "ix_gallery_playlists_watch_later",
        "gallery_playlists",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'watch_later'"),
        sqlite_where=sa.text("kind = 'watch_later'"),
    )
    op.create_table(
        "gallery_playlist_items",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("playlist_id", sa.CHAR(32), nullable=False),
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("position", sa.Double(), nullable=False),
        sa.Column("added_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["gallery_playlists.id"],
            name="fk_gallery_playlist_items_playlist_id_gallery_playlists",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_playlist_items_video_id_gallery_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_playlist_items"),
        sa.UniqueConstraint("playlist_id", "video_id", name="uq_gallery_playlist_items_video"),
    )
    op.create_index(
        "ix_gallery_playlist_items_order",
        "gallery_playlist_items",
        ["playlist_id", "position", "id"],
    )
    op.create_index("ix_gallery_playlist_items_video", "gallery_playlist_items", ["video_id"])


def downgrade() -> None:
    op.drop_table("gallery_playlist_items")
    op.drop_table("gallery_playlists")
