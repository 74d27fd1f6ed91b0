"""gallery_lifecycle_events, gallery_webhooks and gallery_webhook_deliveries: events for
integrations (owned by videoforge.gallery).

``gallery_lifecycle_events`` is the outbox every lifecycle event is written to in the
transaction of its change; the delivery loop fans each one out to a row of
``gallery_webhook_deliveries`` per matching endpoint of ``gallery_webhooks`` (and to
EventBridge).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gallery_lifecycle_events",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("video_id", sa.CHAR(32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("fanned_out_at", _ts(), nullable=True),
        sa.Column("bridge_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_lifecycle_events"),
    )
    op.create_index(
        "ix_gallery_lifecycle_events_fan_out",
        "gallery_lifecycle_events",
        ["fanned_out_at", "created_at"],
    )
    op.create_index(
        "ix_gallery_lifecycle_events_bridge",
        "gallery_lifecycle_events",
        ["bridge_pending", "created_at"],
    )
    op.create_table(
        "gallery_webhooks",
        sa.Column("id", sa.CHAR(32), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_webhooks"),
    )
    op.create_index("ix_gallery_webhooks_user", "gallery_webhooks", ["user_id", "created_at"])
    op.create_table(
        "gallery_webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("webhook_id", sa.CHAR(32), nullable=False),
        sa.Column("event_id", sa.CHAR(32), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("delivered_at", _ts(), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["gallery_webhooks.id"],
            ondelete="CASCADE",
            name="fk_gallery_webhook_deliveries_webhook_id_gallery_webhooks",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["gallery_lifecycle_events.id"],
            ondelete="CASCADE",
            name="fk_gallery_webhook_deliveries_event_id_gallery_lifecycle_events",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_webhook_deliveries"),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_gallery_webhook_deliveries_event"),
    )
    op.create_index(
        "ix_gallery_webhook_deliveries_due",
        "gallery_webhook_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_gallery_webhook_deliveries_log",
        "gallery_webhook_deliveries",
        ["webhook_id", "created_at"],
    )
    op.create_index(
        "ix_gallery_webhook_deliveries_event", "gallery_webhook_deliveries", ["event_id"]
    )


def downgrade() -> None:
    op.drop_table("gallery_webhook_deliveries")
    op.drop_table("gallery_webhooks")
    op.drop_table("gallery_lifecycle_events")
