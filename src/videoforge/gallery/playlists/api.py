"""Routes of playlists: the caller's lists (Watch later among them), someone's public
lists, a playlist's entries in order, and adding, removing and moving videos.

``{playlist_ref}`` in a path is a playlist id, or ``watch-later`` for the caller's own
Watch later (made on first use).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from videoforge.gallery import limits
from videoforge.gallery.api import InfraDep, MaybeUser, User, client_ip
from videoforge.gallery.playlists import pages, service
from videoforge.gallery.playlists.schemas import (
    PAGE_MAX,
    PlaylistCreate,
    PlaylistItemAdd,
    PlaylistItemAdded,
    PlaylistItemMove,
    PlaylistItemMoved,
    PlaylistItemPage,
    PlaylistList,
    PlaylistRead,
    PlaylistUpdate,
)
from videoforge.infra.db import session_scope
from videoforge.infra.errors import Unauthorized
from videoforge.infra.openapi import error_responses

router = APIRouter(responses=error_responses(), tags=["playlists"])

PlaylistRef = Annotated[
    str,
    Path(
        max_length=64,
        description="A playlist id, or `watch-later` for the caller's own.",
    ),
]
Cursor = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX)]

_BASE = "/api/gallery/playlists"


@router.get(_BASE, response_model=PlaylistList)
async def list_playlists(
    infra: InfraDep,
    principal: MaybeUser,
    owner: Annotated[
        str | None,
        Query(max_length=255, description="A user id (or `me`): their public playlists."),
    ] = None,
    video_id: Annotated[
        uuid.UUID | None,
        Query(description="On one's own list: set `contains_video` for this video."),
    ] = None,
) -> PlaylistList:
    """Without `owner`: the caller's own playlists (login required), Watch later first
    (made on first use), then the newest. With `owner`: that user's public playlists
    (all of them for the user themselves and admins); unlisted and private ones are
    never listed for others."""
    async with session_scope(infra.sessions) as session:
        holding = None
        if owner is None or owner == "me" or (principal and owner == principal.user_id):
            if principal is None:
                raise Unauthorized("Log in to see your playlists.", code="auth_required")
            playlists, holding = await service.list_mine(session, principal, video_id=video_id)
        else:
            playlists = await service.list_of(session, owner, principal)
        items = await service.to_reads(
            session, playlists, principal, infra.storage, holding=holding
        )
    return PlaylistList(items=items)


@router.post(_BASE, response_model=PlaylistRead, status_code=status.HTTP_201_CREATED)
async def create_playlist(
    request: Request, infra: InfraDep, principal: User, body: PlaylistCreate
) -> PlaylistRead:
    """A new playlist of the caller's: `title` (1-150 characters), `description` (up
    to 5,000) and `visibility` (default `private`). At most 200 per account (409
    `too_many_playlists`); rate-limited per user and address (429, `Retry-After`)."""
    await limits.check(
        infra.cache,
        infra.settings,
        limits.PLAYLIST,
        ip=client_ip(request),
        user=principal.user_id,
    )
    async with session_scope(infra.sessions) as session:
        playlist = await service.create(session, principal, body)
        read = await service.to_read(session, playlist, principal, infra.storage)
    return read


@router.get(f"{_BASE}/{{playlist_ref}}", response_model=PlaylistRead)
async def get_playlist(
    playlist_ref: PlaylistRef, infra: InfraDep, principal: MaybeUser
) -> PlaylistRead:
    """One playlist: public and unlisted ones to anyone with the id, private ones to
    their owner and admins (404 `playlist_not_found` to everyone else). `watch-later`
    is the caller's own Watch later."""
    async with session_scope(infra.sessions) as session:
        playlist = await service.resolve(session, playlist_ref, principal)
        read = await service.to_read(session, playlist, principal, infra.storage)
    return read


@router.patch(f"{_BASE}/{{playlist_ref}}", response_model=PlaylistRead)
async def update_playlist(
    playlist_ref: PlaylistRef, infra: InfraDep, principal: MaybeUser, body: PlaylistUpdate
) -> PlaylistRead:
    """Rename, describe or change the visibility of one's own playlist (the fields
    sent). Watch later stays as it is: 409 `watch_later_fixed`."""
    async with session_scope(infra.sessions) as session:
        playlist = await service.update(session, playlist_ref, principal, body)
        read = await service.to_read(session, playlist, principal, infra.storage)
    return read


@router.delete(
    f"{_BASE}/{{playlist_ref}}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_playlist(
    playlist_ref: PlaylistRef, infra: InfraDep, principal: MaybeUser
) -> Response:
    """Delete a playlist and its entries (the videos stay): its owner or an admin.
    Watch later cannot be deleted (409 `watch_later_fixed`)."""
    async with session_scope(infra.sessions) as session:
        await service.delete(session, playlist_ref, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(f"{_BASE}/{{playlist_ref}}/videos", response_model=PlaylistItemPage)
async def list_playlist_videos(
    playlist_ref: PlaylistRef,
    infra: InfraDep,
    principal: MaybeUser,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> PlaylistItemPage:
    """The playlist's entries in order, `limit` at a time (page on with `cursor`, the
    previous `next_cursor`; as fast on the last page of 10,000 as on the first). An
    entry whose video the caller may not see (private, hidden, deleted, not ready) is
    `{"position", "available": false}` with nothing of the video."""
    async with session_scope(infra.sessions) as session:
        found = await pages.page(
            session, playlist_ref, principal, infra.storage, cursor=cursor, limit=limit
        )
        playlist = await service.to_read(session, found.playlist, principal, infra.storage)
    return PlaylistItemPage(playlist=playlist, items=found.items, next_cursor=found.next_cursor)


@router.post(
    f"{_BASE}/{{playlist_ref}}/videos",
    response_model=PlaylistItemAdded,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {
            "model": PlaylistItemAdded,
            "description": "The video was in the playlist already; nothing changed.",
        }
    },
)
async def add_playlist_video(
    playlist_ref: PlaylistRef,
    response: Response,
    infra: InfraDep,
    principal: MaybeUser,
    body: PlaylistItemAdd,
) -> PlaylistItemAdded:
    """Append a video the caller may see to their playlist: 201, or 200 with `added:
    false` when it is already there (nothing changes: adding is idempotent). 409
    `playlist_full` at 10,000 videos."""
    async with session_scope(infra.sessions) as session:
        added = await service.add_video(session, playlist_ref, principal, body.video_id)
    response.status_code = status.HTTP_201_CREATED if added.added else status.HTTP_200_OK
    return added


@router.delete(
    f"{_BASE}/{{playlist_ref}}/videos/{{video_id}}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def remove_playlist_video(
    playlist_ref: PlaylistRef, video_id: uuid.UUID, infra: InfraDep, principal: MaybeUser
) -> Response:
    """Take a video out of one's playlist (404 `not_in_playlist` if it is not there)."""
    async with session_scope(infra.sessions) as session:
        await service.remove_video(session, playlist_ref, principal, video_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(f"{_BASE}/{{playlist_ref}}/videos/{{video_id}}/move", response_model=PlaylistItemMoved)
async def move_playlist_video(
    playlist_ref: PlaylistRef,
    video_id: uuid.UUID,
    infra: InfraDep,
    principal: MaybeUser,
    body: PlaylistItemMove,
) -> PlaylistItemMoved:
    """Move a video of one's playlist to `position` (0-based; past the end: last).
    One entry is rewritten, whatever the playlist's length."""
    async with session_scope(infra.sessions) as session:
        playlist, position = await service.move_video(
            session, playlist_ref, principal, video_id, body.position
        )
    return PlaylistItemMoved(playlist_id=playlist.id, video_id=video_id, position=position)
