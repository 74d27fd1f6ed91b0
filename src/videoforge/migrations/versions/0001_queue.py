"""queue tables (owned by videoforge.infra/queue).

Revision ID: 0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("message_id", sa.CHAR(32), nullable=False),
        sa.Column("queue", sa.String(80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visible_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receive_count", sa.Integer(), nullable=False),
        sa.Column("receipt_token", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_queue_messages"),
        sa.UniqueConstraint("message_id", name="uq_queue_messages_message_id"),
    )
    op.create_index("ix_queue_messages_claim", "queue_messages", ["queue", "visible_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_queue_messages_claim", table_name="queue_messages")
    op.drop_table("queue_messages")
