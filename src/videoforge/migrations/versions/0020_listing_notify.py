"""gallery: every change to ``gallery_videos`` is announced on the ``videoforge_listing``
channel (PostgreSQL only; owned by videoforge.gallery.listing_cache).

A statement-level trigger runs ``pg_notify`` after any insert, update, delete or
truncate of the table, whoever runs it (a gallery process, the sweep, an operator's
SQL). The notification is sent when the transaction commits, once per transaction, and
tells every gallery process to drop the anonymous listings it remembers. SQLite gets
nothing: the gallery remembers no listing there.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

CHANNEL = "videoforge_listing"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION videoforge_listing_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER gallery_videos_listing_changed"
        " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gallery_videos"
        " FOR EACH STATEMENT EXECUTE FUNCTION videoforge_listing_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS gallery_videos_listing_changed ON gallery_videos")
    op.execute("DROP FUNCTION IF EXISTS videoforge_listing_changed()")
