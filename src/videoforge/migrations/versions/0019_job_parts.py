"""jobs: parts of a chunked job (issue 15, one long video across the fleet; owned by
videoforge.jobs).

A video longer than ``CHUNK_MIN_SECONDS`` is encoded as parts, each its own ``jobs``
row (so it has the claim, heartbeat, retry and sweep of any job): ``parent_id``,
``part_index`` and the span ``part_start``..``part_end`` of the whole timeline it
encodes. The parent counts ``parts_total`` and ``parts_done``. Null/0 for every
existing job.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("parent_id", sa.CHAR(32), nullable=True))
        batch.add_column(sa.Column("part_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("part_start", sa.Float(), nullable=True))
        batch.add_column(sa.Column("part_end", sa.Float(), nullable=True))
        batch.add_column(sa.Column("parts_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("parts_done", sa.Integer(), nullable=False, server_default="0"))
        batch.create_foreign_key(
            "fk_jobs_parent_id_jobs", "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_jobs_parent_id", ["parent_id"])
        batch.create_unique_constraint("uq_jobs_parent_id_part_index", ["parent_id", "part_index"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_parent_id_part_index", type_="unique")
        batch.drop_index("ix_jobs_parent_id")
        batch.drop_constraint("fk_jobs_parent_id_jobs", type_="foreignkey")
        for column in ("parts_done", "parts_total", "part_end", "part_start", "part_index"):
            batch.drop_column(column)
        batch.drop_column("parent_id")
