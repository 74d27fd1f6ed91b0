"""gallery tables (owned by videoforge.gallery).

Videos, the jobs seen per video, upload sessions and daily view counts, plus full-text
search: a GIN expression index on PostgreSQL, an FTS5 table kept in step by triggers on
SQLite.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The searched document (since 0007 a stored column, gallery_videos.search_document).
PG_DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(description, ''))"
)

# SQLite: a standalone FTS5 table rather than external content, because gallery_videos
# has no INTEGER PRIMARY KEY and VACUUM may renumber implicit rowids (which would
# silently corrupt an external-content index). video_id is an indexed column so the
# triggers find a row with a MATCH instead of scanning.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE gallery_videos_fts USING fts5("
    "video_id, title, description, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER gallery_videos_fts_ai AFTER INSERT ON gallery_videos BEGIN "
    "INSERT INTO gallery_videos_fts(video_id, title, description) "
    "VALUES (new.id, new.title, new.description); END",
    "CREATE TRIGGER gallery_videos_fts_ad AFTER DELETE ON gallery_videos BEGIN "
    "DELETE FROM gallery_videos_fts WHERE gallery_videos_fts MATCH "
    "('video_id:\"' || old.id || '\"'); END",
    "CREATE TRIGGER gallery_videos_fts_au AFTER UPDATE OF title, description ON gallery_videos "
    "BEGIN "
    "DELETE FROM gallery_videos_fts WHERE gallery_videos_fts MATCH "
    "('video_id:\"' || old.id || '\"'); "
    "INSERT INTO gallery_videos_fts(video_id, title, description) "
    "VALUES (new.id, new.title, new.description); END",
]


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gallery_videos",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("s3_key", sa.String(1024), nullable=True),
        sa.Column("original_filename", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(127), nullable=True),
        sa.Column("source_url", sa.String(2048), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("video_codec", sa.String(64), nullable=True),
        sa.Column("audio_codec", sa.String(64), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("thumbnail_key", sa.String(1024), nullable=True),
        sa.Column("preview_key", sa.String(1024), nullable=True),
        sa.Column("hls_master_key", sa.String(1024), nullable=True),
        sa.Column("metadata_key", sa.String(1024), nullable=True),
        sa.Column("renditions", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.CHAR(32), nullable=True),
        sa.Column("job_status", sa.String(16), nullable=True),
        sa.Column("last_event_seq", sa.Integer(), nullable=True),
        sa.Column("last_event_at", _ts(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_videos"),
        sa.UniqueConstraint("s3_key", name="uq_gallery_videos_s3_key"),
    )
    op.create_index(
        "ix_gallery_videos_listing",
        "gallery_videos",
        ["visibility", "status", "created_at", "id"],
    )
    op.create_index("ix_gallery_videos_owner", "gallery_videos", ["user_id", "created_at", "id"])
    op.create_index(
        "ix_gallery_videos_views", "gallery_videos", ["visibility", "status", "views", "id"]
    )
    op.create_index(
        "ix_gallery_videos_title", "gallery_videos", ["visibility", "status", "title", "id"]
    )

    op.create_table(
        "gallery_video_jobs",
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("job_id", sa.CHAR(32), nullable=False),
        sa.Column("first_seen_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_video_jobs_video_id_gallery_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("video_id", "job_id", name="pk_gallery_video_jobs"),
    )

    op.create_table(
        "gallery_uploads",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("upload_id", sa.String(1024), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("video_id", sa.CHAR(32), nullable=True),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_uploads_video_id_gallery_videos",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name="pk_gallery_uploads"),
    )
    op.create_index("ix_gallery_uploads_state_expires", "gallery_uploads", ["state", "expires_at"])

    op.create_table(
        "gallery_video_views_daily",
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            name="fk_gallery_video_views_daily_video_id_gallery_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("video_id", "day", name="pk_gallery_video_views_daily"),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_gallery_videos_fts ON gallery_videos USING GIN ({PG_DOCUMENT})"
        )
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_gallery_videos_fts")
    else:
        for trigger in ("gallery_videos_fts_ai", "gallery_videos_fts_ad", "gallery_videos_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS gallery_videos_fts")
    op.drop_table("gallery_video_views_daily")
    op.drop_index("ix_gallery_uploads_state_expires", table_name="gallery_uploads")
    op.drop_table("gallery_uploads")
    op.drop_table("gallery_video_jobs")
    for name in (
        "ix_gallery_videos_title",
        "ix_gallery_videos_views",
        "ix_gallery_videos_owner",
        "ix_gallery_videos_listing",
    ):
        op.drop_index(name, table_name="gallery_videos")
    op.drop_table("gallery_videos")
