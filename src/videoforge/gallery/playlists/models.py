"""The playlist tables (owned by the gallery; migration 0016)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Double, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.gallery.models import Visibility
from videoforge.infra.db import Base, TimestampMixin, utcnow


class PlaylistKind(StrEnum):
    REGULAR = "regular"
    #: The one list every user has (made on first use), private, not renamed or deleted.
    WATCH_LATER = "watch_later"


def _enum(enum: type[StrEnum], name: str) -> SAEnum:
    # Plain strings, as the other gallery enums: a new kind is not a migration.
    return SAEnum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class GalleryPlaylist(TimestampMixin, Base):
    """A user's list of videos. Its length is counted from its items when read (no
    counter to drift when a video's deletion removes items by cascade)."""

    __tablename__ = "gallery_playlists"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    #: The owner's display name when the list was made (never an e-mail address).
    owner_name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[PlaylistKind] = mapped_column(
        _enum(PlaylistKind, "gallery_playlist_kind"), nullable=False
    )
    title: Mapped[str] = mapped_column(String(150), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility, "gallery_visibility"), nullable=False
    )

    __table_args__ = (
        # A user's lists (theirs, or their public ones on their page), newest first.
        Index("ix_gallery_playlists_user", "user_id", "created_at", "id"),
        # Exactly one Watch later per user, whatever two first uses race.
        Index(
            "ix_gallery_playlists_watch_later",
            "user_id",
            unique=True,
            postgresql_where=sql_text("kind = 'watch_later'"),
            sqlite_where=sql_text("kind = 'watch_later'"),
        ),
    )


class GalleryPlaylistItem(Base):
    """A video in a playlist at a place given by ``position``: gapped floats, so a
    move writes one row (the midpoint of its new neighbours), never the whole list."""

    __tablename__ = "gallery_playlist_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    playlist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_playlists.id", ondelete="CASCADE"), nullable=False
    )
    # Deleting a video removes it from every playlist (ON DELETE CASCADE; SQLite
    # engines turn foreign keys on).
    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("gallery_videos.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[float] = mapped_column(Double(), nullable=False)
    added_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)

    __table_args__ = (
        # Every page of a playlist is a range of this index (keyset cursor), however
        # long the playlist.
        Index("ix_gallery_playlist_items_order", "playlist_id", "position", "id"),
        # A video once per playlist (adding it again changes nothing).
        UniqueConstraint("playlist_id", "video_id", name="uq_gallery_playlist_items_video"),
        # What a video's deletion cascades through, and "which of my lists hold it".
        Index("ix_gallery_playlist_items_video", "video_id"),
    )
