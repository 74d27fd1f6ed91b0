"""processing tables: jobs and media_assets (owned by videoforge.jobs / the processor).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Spelled out rather than imported from the models: a migration must keep describing the
# schema of its time even after the models move on.
_STATUSES = (
    "PENDING",
    "DOWNLOADING",
    "PROCESSING",
    "UPLOADING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
)
_ASSET_TYPES = ("video", "thumbnail", "gif", "metadata", "hls")


def _guid() -> sa.CHAR:
    return sa.CHAR(32)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", _guid(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("video_id", _guid(), nullable=True),
        sa.Column("input_source", sa.String(2048), nullable=False),
        sa.Column("output_format", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("metadata_s3_key", sa.String(1024), nullable=True),
        sa.Column("source_key", sa.String(1024), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("original_size", sa.BigInteger(), nullable=True),
        sa.Column("original_bitrate", sa.BigInteger(), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("video_codec", sa.String(32), nullable=True),
        sa.Column("audio_codec", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("claim_message_id", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", _ts(), nullable=True),
        sa.Column("enqueued_at", _ts(), nullable=True),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_id_idempotency_key"),
        sa.CheckConstraint(_in("status", _STATUSES), name="ck_jobs_status"),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name="ck_jobs_progress"),
    )
    op.create_index("ix_jobs_user_id_created_at", "jobs", ["user_id", "created_at"])
    op.create_index("ix_jobs_status_enqueued_at", "jobs", ["status", "enqueued_at"])
    op.create_index("ix_jobs_video_id", "jobs", ["video_id"])

    op.create_table(
        "media_assets",
        sa.Column("id", _guid(), nullable=False),
        sa.Column("job_id", _guid(), nullable=False),
        sa.Column("asset_type", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("s3_key", sa.String(1024), nullable=False),
        sa.Column("s3_url", sa.String(2048), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("quality", sa.String(32), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media_assets"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_media_assets_job_id_jobs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("job_id", "s3_key", name="uq_media_assets_job_id_s3_key"),
        sa.CheckConstraint(_in("asset_type", _ASSET_TYPES), name="ck_media_assets_asset_type"),
    )
    op.create_index("ix_media_assets_job_id", "media_assets", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_media_assets_job_id", table_name="media_assets")
    op.drop_table("media_assets")
    op.drop_index("ix_jobs_video_id", table_name="jobs")
    op.drop_index("ix_jobs_status_enqueued_at", table_name="jobs")
    op.drop_index("ix_jobs_user_id_created_at", table_name="jobs")
    op.drop_table("jobs")
