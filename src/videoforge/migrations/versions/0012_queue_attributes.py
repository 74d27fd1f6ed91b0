"""queue_messages.attributes: what travels beside a message's body (owned by the
database queue in videoforge.infra.queue): the sender's W3C trace context, as SQS
carries it in its message attributes.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_messages") as batch:
        batch.add_column(sa.Column("attributes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_messages") as batch:
        batch.drop_column("attributes")
