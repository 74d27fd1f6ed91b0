"""gallery_videos: publishing (drafts, "publish when ready", scheduled) and the thumbnail
the owner chose (owned by videoforge.gallery).

``draft`` keeps a video from everyone but its owner (and admins) until it is published;
``publish_when_ready`` asks the job-event applier to publish it when its processing
completes; ``publish_at`` is when a scheduled video becomes public; ``publish_pending``
marks the videos whose publication is still to be announced (``video.published``), with
a partial index for the few of them. The defaults (not a draft, no schedule, nothing to
announce) are what every video made before this revision was: published.

The thumbnail: ``thumbnail_candidates`` are the stills the pipeline offers (keys),
``thumbnail_pick`` the one the owner chose (1-based), ``custom_thumbnail_key`` the
image the owner uploaded (re-encoded); ``thumbnail_key`` stays the one that is shown.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite: the search triggers stay as they are).
    for flag in ("draft", "publish_when_ready", "publish_pending"):
        op.add_column(
            "gallery_videos",
            sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    op.add_column("gallery_videos", sa.Column("publish_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_gallery_videos_publish_pending",
        "gallery_videos",
        ["publish_at"],
        postgresql_where=sa.text("publish_pending"),
        sqlite_where=sa.text("publish_pending"),
    )
    op.add_column("gallery_videos", sa.Column("thumbnail_candidates", sa.JSON()))
    op.add_column("gallery_videos", sa.Column("thumbnail_pick", sa.Integer()))
    op.add_column("gallery_videos", sa.Column("custom_thumbnail_key", sa.String(1024)))


def downgrade() -> None:
    op.drop_index("ix_gallery_videos_publish_pending", table_name="gallery_videos")
    # SQLite 3.35+ drops columns in place, as in upgrade (no rebuild).
    for column in (
        "custom_thumbnail_key",
        "thumbnail_pick",
        "thumbnail_candidates",
        "publish_pending",
        "publish_at",
        "publish_when_ready",
        "draft",
    ):
        op.drop_column("gallery_videos", column)
