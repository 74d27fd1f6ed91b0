"""A playlist's entries, page by page, each shown only as far as the caller may see its
video (:func:`~.service.available`); cursors name the last entry of the previous page
and the playlist they were made for."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import service as videos
from videoforge.gallery.playlists import repository, service
from videoforge.gallery.playlists.models import GalleryPlaylist
from videoforge.gallery.playlists.repository import After
from videoforge.gallery.playlists.schemas import ITEMS_MAX, PlaylistItemRead, PlaylistVideo
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import BadRequest
from videoforge.infra.storage.base import Storage


@dataclass(frozen=True)
class Page:
    playlist: GalleryPlaylist
    items: list[PlaylistItemRead]
    next_cursor: str | None


def encode_cursor(playlist_id: uuid.UUID, after: After) -> str:
    raw = json.dumps(
        {"l": playlist_id.hex, "p": after.position, "i": after.id.hex, "n": after.ordinal},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(playlist_id: uuid.UUID, cursor: str) -> After:
    """The last entry of the previous page; 400 ``invalid_cursor`` for anything else
    (including another playlist's cursor)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("l") != playlist_id.hex:
            raise ValueError("another list")
        position, ordinal = data["p"], data["n"]
        if isinstance(position, bool) or not isinstance(position, int | float):
            raise TypeError("position")
        if isinstance(ordinal, bool) or not isinstance(ordinal, int):
            raise TypeError("ordinal")
        if not math.isfinite(position) or not 0 <= ordinal <= ITEMS_MAX:
            raise ValueError("out of range")
        return After(position=float(position), id=uuid.UUID(hex=data["i"]), ordinal=ordinal)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise BadRequest(
            "The cursor is invalid (or was made for another playlist).", code="invalid_cursor"
        ) from None


async def page(
    session: AsyncSession,
    ref: str,
    principal: Principal | None,
    storage: Storage,
    *,
    cursor: str | None,
    limit: int,
) -> Page:
    """A page of the playlist's entries in order, each shown only as far as the caller
    may see its video."""
    playlist = await service.resolve(session, ref, principal)
    after = decode_cursor(playlist.id, cursor) if cursor else None
    rows = await repository.page(session, playlist.id, after, limit + 1)
    start = after.ordinal + 1 if after else 0
    owner = service.is_owner(playlist, principal)
    items: list[PlaylistItemRead] = []
    for offset, (entry, video) in enumerate(rows[:limit]):
        if not service.available(video, principal):
            items.append(
                PlaylistItemRead(
                    position=start + offset,
                    available=False,
                    video_id=entry.video_id if owner else None,
                )
            )
            continue
        read = await videos.to_read(video, principal, storage)
        items.append(
            PlaylistItemRead(
                position=start + offset,
                available=True,
                video_id=video.id,
                added_at=entry.added_at,
                video=PlaylistVideo(
                    id=video.id,
                    title=video.title,
                    user_id=video.user_id,
                    owner_name=video.owner_name,
                    duration=video.duration,
                    status=video.status,
                    visibility=video.visibility,
                    thumbnail_url=read.thumbnail_url,
                ),
            )
        )
    next_cursor = None
    if len(rows) > limit and rows[:limit]:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(
            playlist.id, After(position=last.position, id=last.id, ordinal=start + limit - 1)
        )
    return Page(playlist=playlist, items=items, next_cursor=next_cursor)


__all__ = ["Page", "decode_cursor", "encode_cursor", "page"]
