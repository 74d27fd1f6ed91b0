"""gallery_videos.playable: what of a video still processing can already be watched
(issue 15, watch while it processes; owned by videoforge.gallery).

The processor's events name the growing playlists of the lowest rung and the audio
tracks once their first segments are stored; the gallery serves them as an EVENT
stream until the job completes. Null for every existing video.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("gallery_videos", sa.Column("playable", sa.JSON(), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite has it): a batch copy of the table would lose the
    # triggers that keep its search index in step.
    op.drop_column("gallery_videos", "playable")
