"""gallery_videos.owner_name: the uploader's display name (owned by videoforge.gallery).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: videos made before this revision have no recorded name (shown as none).
    with op.batch_alter_table("gallery_videos") as batch:
        batch.add_column(sa.Column("owner_name", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gallery_videos") as batch:
        batch.drop_column("owner_name")
