"""gallery_videos.media and gallery_captions: the media outputs of issue 12 (owned by
videoforge.gallery).

``media`` keeps what the processor's COMPLETED event says sits beside the HLS master
(DASH manifest, audio tracks, extracted subtitles, chapters, storyboard); a row of
``gallery_captions`` is one caption track uploaded by the video's owner, stored as
WebVTT under ``captions/{video_id}/``.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("gallery_videos", sa.Column("media", sa.JSON(), nullable=True))
    op.create_table(
        "gallery_captions",
        sa.Column("video_id", sa.CHAR(32), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("cues", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["gallery_videos.id"],
            ondelete="CASCADE",
            name="fk_gallery_captions_video_id_gallery_videos",
        ),
        sa.PrimaryKeyConstraint("video_id", "language", name="pk_gallery_captions"),
    )


def downgrade() -> None:
    op.drop_table("gallery_captions")
    op.drop_column("gallery_videos", "media")
