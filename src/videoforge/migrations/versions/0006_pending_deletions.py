"""gallery_pending_deletions: storage deletes that must survive a storage outage
(owned by videoforge.gallery).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_pending_deletions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("is_prefix", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_pending_deletions"),
    )
    op.create_index(
        "ix_gallery_pending_deletions_due", "gallery_pending_deletions", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_gallery_pending_deletions_due", table_name="gallery_pending_deletions")
    op.drop_table("gallery_pending_deletions")
