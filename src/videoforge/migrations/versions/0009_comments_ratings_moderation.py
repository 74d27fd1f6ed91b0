"""Comments, ratings, reports and moderation (owned by videoforge.gallery).

gallery_videos gains its counters (likes, dislikes, comments_count), its comment
policy and the moderators' hidden flag, all with server defaults so existing rows (and
bulk inserts that leave them out) start at zero / ``on`` / visible. New tables:
gallery_comments, gallery_ratings, gallery_reports, gallery_user_blocks and
gallery_moderation_actions. Comments, ratings and reports hang off their video with
ON DELETE CASCADE (SQLite engines turn foreign keys on); the moderation log has no
foreign key, so it outlives what it names.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _bigint() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_VIDEO_COLUMNS = ("likes", "dislikes", "comments_count", "comment_policy", "hidden")


def upgrade() -> None:
    for name in ("likes", "dislikes", "comments_count"):
        op.add_column(
            "gallery_videos",
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"),
        )
    op.add_column(
        "gallery_videos",
        sa.Column("comment_policy", sa.String(16), nullable=False, server_default="on"),
    )
    op.add_column(
        "gallery_videos",
        sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_gallery_videos_likes", "gallery_videos", ["visibility", "status", "likes", "id"]
    )

    op.create_table(
        "gallery_comments",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("parent_id", sa.CHAR(32), nullable=True),
        sa.Column("author_id", sa.String(255), nullable=False),
        sa.Column("author_name", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_reason", sa.String(16), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("replies_count", _bigint(), nullable=False),
        sa.Column("edited_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_comments_video_id_gallery_videos",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["gallery_comments.id"],
            name="fk_gallery_comments_parent_id_gallery_comments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_comments"),
    )
    top_level = sa.text("parent_id IS NULL")
    op.create_index(
        "ix_gallery_comments_top",
        "gallery_comments",
        ["video_id", "created_at", "id"],
        postgresql_where=top_level,
        sqlite_where=top_level,
    )
    op.create_index(
        "ix_gallery_comments_replies", "gallery_comments", ["parent_id", "created_at", "id"]
    )
    op.create_index(
        "ix_gallery_comments_status",
        "gallery_comments",
        ["video_id", "status", "created_at", "id"],
    )
    op.create_index(
        "ix_gallery_comments_pinned",
        "gallery_comments",
        ["video_id"],
        unique=True,
        postgresql_where=sa.text("pinned"),
        sqlite_where=sa.text("pinned"),
    )

    op.create_table(
        "gallery_ratings",
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("value", sa.String(16), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_ratings_video_id_gallery_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("video_id", "user_id", name="pk_gallery_ratings"),
    )

    op.create_table(
        "gallery_reports",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_id", sa.CHAR(32), nullable=False),
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("comment_id", sa.CHAR(32), nullable=True),
        sa.Column("reporter_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("resolved_at", _ts(), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_reports_video_id_gallery_videos",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["gallery_comments.id"],
            name="fk_gallery_reports_comment_id_gallery_comments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_reports"),
    )
    op.create_index(
        "ix_gallery_reports_queue", "gallery_reports", ["status", "target_type", "target_id"]
    )
    open_only = sa.text("status = 'open'")
    op.create_index(
        "ix_gallery_reports_open_once",
        "gallery_reports",
        ["target_type", "target_id", "reporter_id"],
        unique=True,
        postgresql_where=open_only,
        sqlite_where=open_only,
    )
    # Reports of a comment are found (and cascaded) through comment_id.
    op.create_index("ix_gallery_reports_comment", "gallery_reports", ["comment_id"])
    op.create_index("ix_gallery_reports_video", "gallery_reports", ["video_id"])

    op.create_table(
        "gallery_user_blocks",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "scope", name="pk_gallery_user_blocks"),
    )

    op.create_table(
        "gallery_moderation_actions",
        sa.Column("id", _bigint(), autoincrement=True, nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("video_id", sa.CHAR(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_moderation_actions"),
    )
    op.create_index(
        "ix_gallery_moderation_actions_created",
        "gallery_moderation_actions",
        ["created_at", "id"],
    )


def downgrade() -> None:
    op.drop_table("gallery_moderation_actions")
    op.drop_table("gallery_user_blocks")
    op.drop_table("gallery_reports")
    op.drop_table("gallery_ratings")
    op.drop_table("gallery_comments")
    op.drop_index("ix_gallery_videos_likes", table_name="gallery_videos")
    for name in reversed(_VIDEO_COLUMNS):
        op.drop_column("gallery_videos", name)
