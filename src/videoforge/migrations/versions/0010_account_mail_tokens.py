"""Mailed account links (videoforge.gateway) and storage accounting (videoforge.gallery).

accounts gains ``email_confirmed`` (null for every existing account: never asked, so
turning EMAIL_CONFIRMATION on does not lock anyone out). account_tokens holds the
SHA-256 of each single-use link (password reset, address confirmation, address change).
gallery_videos gains ``storage_bytes`` (null until measured; sums fall back to the
original's ``file_size``), and gallery_user_quotas holds admins' per-user quotas.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from videoforge.infra.db import GUID, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (no batch copy): SQLite's table rebuild would drop the
    # search triggers and indexes of gallery_videos.
    op.add_column("accounts", sa.Column("email_confirmed", sa.Boolean(), nullable=True))
    op.create_table(
        "account_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", GUID(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_tokens_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_account_tokens")),
    )
    op.create_index(
        op.f("ix_account_tokens_account_id"), "account_tokens", ["account_id"], unique=False
    )
    op.add_column("gallery_videos", sa.Column("storage_bytes", sa.BigInteger(), nullable=True))
    op.create_table(
        "gallery_user_quotas",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_gallery_user_quotas")),
    )


def downgrade() -> None:
    op.drop_table("gallery_user_quotas")
    op.drop_column("gallery_videos", "storage_bytes")
    op.drop_index(op.f("ix_account_tokens_account_id"), table_name="account_tokens")
    op.drop_table("account_tokens")
    op.drop_column("accounts", "email_confirmed")
