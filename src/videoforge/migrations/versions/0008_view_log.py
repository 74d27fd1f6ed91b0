"""gallery_view_log: counted views, durable before the viewer hears ``counted: true``
(owned by videoforge.gallery).

Views used to be buffered only in a cache hash until the flusher added them to the
totals, so a Redis that lost its data lost them. Now each counted view is a row here,
committed first; the flusher adds rows to the totals and deletes them in one
transaction.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_view_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("video_id", sa.CHAR(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_view_log"),
    )


def downgrade() -> None:
    op.drop_table("gallery_view_log")
