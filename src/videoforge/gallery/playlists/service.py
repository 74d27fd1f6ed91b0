"""The rules of playlists: who may see, change and fill them, and what they show.

A playlist's visibility works as a video's: public and unlisted ones are seen by anyone
with the id (unlisted ones are never listed for others), private ones only by their
owner and admins (404 to everyone else, never 403). Only the owner changes a playlist;
the owner or an admin deletes it. An entry shows its video only when the viewer may
see and play that video (:func:`available`): a playlist never reveals a private or
hidden video of someone else, it shows an unavailable entry in its place.

Services only flush; the request's ``session_scope`` commits.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import service as videos
from videoforge.gallery.access import can_view, is_owner_or_admin
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gallery.playlists import repository
from videoforge.gallery.playlists.models import GalleryPlaylist, PlaylistKind
from videoforge.gallery.playlists.repository import MIN_GAP, STEP
from videoforge.gallery.playlists.schemas import (
    ITEMS_MAX,
    PLAYLISTS_MAX,
    PlaylistCreate,
    PlaylistItemAdded,
    PlaylistRead,
    PlaylistUpdate,
)
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    UnprocessableEntity,
)
from videoforge.infra.storage.base import Storage

#: The path segment that names the caller's own Watch later.
WATCH_LATER_REF = "watch-later"
#: Entries looked at for a playlist's thumbnail (the first one the caller may see).
_THUMBNAIL_CANDIDATES = 5


def playlist_not_found() -> NotFound:
    return NotFound("No such playlist.", code="playlist_not_found")


def _login() -> Unauthorized:
    return Unauthorized("Log in to do this.", code="auth_required")


def _watch_later_fixed() -> Conflict:
    return Conflict(
        "Watch later cannot be renamed, described, shared or deleted.",
        code="watch_later_fixed",
    )


# ------------------------------------------------------------------------ access
def can_view_playlist(playlist: GalleryPlaylist, principal: Principal | None) -> bool:
    if playlist.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return True
    return principal is not None and (principal.is_admin or principal.user_id == playlist.user_id)


def is_owner(playlist: GalleryPlaylist, principal: Principal | None) -> bool:
    return principal is not None and principal.user_id == playlist.user_id


def available(video: GalleryVideo, principal: Principal | None) -> bool:
    """Whether a playlist may show this video to this viewer: one they may see
    (gallery.access) and, unless it is theirs, one that plays (ready)."""
    if not can_view(video, principal):
        return False
    return video.status is VideoStatus.READY or is_owner_or_admin(video, principal)


async def _watch_later(
    session: AsyncSession, principal: Principal, *, lock: bool = False
) -> GalleryPlaylist:
    found = await repository.watch_later(session, principal.user_id, lock=lock)
    if found is None:
        await repository.insert_watch_later(session, principal.user_id, principal.public_name)
        found = await repository.watch_later(session, principal.user_id, lock=lock)
    assert found is not None  # inserted, or a concurrent first use inserted it
    return found


async def resolve(
    session: AsyncSession, ref: str, principal: Principal | None, *, lock: bool = False
) -> GalleryPlaylist:
    """The playlist ``ref`` names (an id, or ``watch-later``: the caller's own) if the
    caller may see it; 404 otherwise (``lock``: held for a change of its items)."""
    if ref == WATCH_LATER_REF:
        if principal is None:
            raise _login()
        return await _watch_later(session, principal, lock=lock)
    try:
        playlist_id = uuid.UUID(ref)
    except ValueError:
        raise playlist_not_found() from None
    playlist = await repository.get(session, playlist_id, lock=lock)
    if playlist is None or not can_view_playlist(playlist, principal):
        raise playlist_not_found()
    return playlist


async def _owned(
    session: AsyncSession, ref: str, principal: Principal | None, *, lock: bool = False
) -> GalleryPlaylist:
    # 404 before 401, as for videos: a stranger learns nothing of a private playlist.
    playlist = await resolve(session, ref, principal, lock=lock)
    if principal is None:
        raise _login()
    if not is_owner(playlist, principal):
        raise Forbidden("Only its owner can change a playlist.", code="not_owner")
    return playlist


# ----------------------------------------------------------------------- reading
async def _thumbnails(
    session: AsyncSession,
    playlists: list[GalleryPlaylist],
    principal: Principal | None,
    storage: Storage,
) -> dict[uuid.UUID, str | None]:
    firsts = await repository.first_videos(
        session, [p.id for p in playlists], _THUMBNAIL_CANDIDATES
    )
    found: dict[uuid.UUID, str | None] = {}
    for playlist_id, candidates in firsts.items():
        shown = next((v for v in candidates if available(v, principal)), None)
        if shown is not None:
            found[playlist_id] = (await videos.to_read(shown, principal, storage)).thumbnail_url
    return found


async def to_reads(
    session: AsyncSession,
    playlists: list[GalleryPlaylist],
    principal: Principal | None,
    storage: Storage,
    *,
    holding: set[uuid.UUID] | None = None,
) -> list[PlaylistRead]:
    """The wire form of these playlists (counts and thumbnails in one query each)."""
    counts = await repository.counts(session, [p.id for p in playlists])
    thumbnails = await _thumbnails(session, playlists, principal, storage)
    return [
        PlaylistRead(
            id=p.id,
            kind=p.kind,
            user_id=p.user_id,
            owner_name=p.owner_name,
            title=p.title,
            description=p.description,
            visibility=p.visibility,
            video_count=counts.get(p.id, 0),
            thumbnail_url=thumbnails.get(p.id),
            contains_video=None if holding is None else p.id in holding,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        for p in playlists
    ]


async def to_read(
    session: AsyncSession, playlist: GalleryPlaylist, principal: Principal | None, storage: Storage
) -> PlaylistRead:
    return (await to_reads(session, [playlist], principal, storage))[0]


async def list_mine(
    session: AsyncSession, principal: Principal, *, video_id: uuid.UUID | None
) -> tuple[list[GalleryPlaylist], set[uuid.UUID] | None]:
    """The caller's playlists, Watch later (made now if need be) first; with
    ``video_id``, which of them hold that video."""
    await _watch_later(session, principal)
    playlists = await repository.of_user(
        session, principal.user_id, public_only=False, limit=PLAYLISTS_MAX
    )
    if video_id is None:
        return playlists, None
    return playlists, await repository.holding(session, [p.id for p in playlists], video_id)


async def list_of(
    session: AsyncSession, owner: str, principal: Principal | None
) -> list[GalleryPlaylist]:
    """Someone's playlists as the caller may list them: their public ones (unlisted and
    private ones are never listed for others); all of them for themselves and admins."""
    everything = principal is not None and (principal.is_admin or principal.user_id == owner)
    return await repository.of_user(session, owner, public_only=not everything, limit=PLAYLISTS_MAX)


# ----------------------------------------------------------------------- writing
async def create(
    session: AsyncSession, principal: Principal, data: PlaylistCreate
) -> GalleryPlaylist:
    """A new playlist of the caller's (409 ``too_many_playlists`` past the limit)."""
    if await repository.count_of_user(session, principal.user_id) >= PLAYLISTS_MAX:
        raise Conflict(
            f"You have {PLAYLISTS_MAX} playlists, the most one account may keep; delete one first.",
            code="too_many_playlists",
        )
    playlist = GalleryPlaylist(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        owner_name=principal.public_name,
        kind=PlaylistKind.REGULAR,
        title=data.title,
        description=data.description,
        visibility=data.visibility,
    )
    await repository.add(session, playlist)
    return playlist


async def update(
    session: AsyncSession, ref: str, principal: Principal | None, data: PlaylistUpdate
) -> GalleryPlaylist:
    """Rename, describe or share the caller's playlist (the fields that were sent)."""
    playlist = await _owned(session, ref, principal, lock=True)
    changes = data.model_dump(exclude_unset=True)
    for name in ("title", "visibility"):
        if name in changes and changes[name] is None:
            raise UnprocessableEntity(f"{name} cannot be null.", code="validation_error")
    if "description" in changes and changes["description"] is None:
        changes["description"] = ""
    if playlist.kind is PlaylistKind.WATCH_LATER and changes:
        raise _watch_later_fixed()
    if changes:
        await repository.update_fields(session, playlist.id, changes)
    refreshed = await repository.get(session, playlist.id)
    assert refreshed is not None
    return refreshed


async def delete(session: AsyncSession, ref: str, principal: Principal | None) -> None:
    """Delete a playlist and its entries (its owner, or an admin); never Watch later."""
    playlist = await resolve(session, ref, principal, lock=True)
    if principal is None:
        raise _login()
    if not (is_owner(playlist, principal) or principal.is_admin):
        raise Forbidden("Only its owner can delete a playlist.", code="not_owner")
    if playlist.kind is PlaylistKind.WATCH_LATER:
        raise _watch_later_fixed()
    if not await repository.remove(session, playlist.id):
        raise playlist_not_found()


async def add_video(
    session: AsyncSession, ref: str, principal: Principal | None, video_id: uuid.UUID
) -> PlaylistItemAdded:
    """Append a video the caller may see to their playlist. Adding one that is there
    already changes nothing (``added: false``, its place unchanged)."""
    playlist = await _owned(session, ref, principal, lock=True)
    assert principal is not None
    # Held (FOR KEY SHARE) until the commit: a concurrent delete of the video waits,
    # or this finds it gone (404), instead of failing on the foreign key.
    video = await videos.get_visible(session, video_id, principal, keep=True)
    existing = await repository.item(session, playlist.id, video.id)
    if existing is not None:
        return PlaylistItemAdded(
            playlist_id=playlist.id,
            video_id=video.id,
            position=await repository.ordinal(session, existing),
            added=False,
            video_count=await repository.count(session, playlist.id),
        )
    total = await repository.count(session, playlist.id)
    if total >= ITEMS_MAX:
        raise Conflict(
            f"A playlist holds at most {ITEMS_MAX:,} videos; remove some first.",
            code="playlist_full",
        )
    last = await repository.last_position(session, playlist.id)
    # The playlist row is locked: no other append can take this place meanwhile, so the
    # new entry is the last of ``total + 1`` (no second count needed).
    inserted = await repository.insert_item(
        session, playlist.id, video.id, STEP if last is None else last + STEP
    )
    assert inserted
    await repository.touch(session, playlist.id)
    return PlaylistItemAdded(
        playlist_id=playlist.id,
        video_id=video.id,
        position=total,
        added=True,
        video_count=total + 1,
    )


def _not_in_playlist() -> NotFound:
    return NotFound("The video is not in this playlist.", code="not_in_playlist")


async def remove_video(
    session: AsyncSession, ref: str, principal: Principal | None, video_id: uuid.UUID
) -> None:
    """Take a video out of the caller's playlist (even one they may no longer see)."""
    playlist = await _owned(session, ref, principal, lock=True)
    if not await repository.remove_item(session, playlist.id, video_id):
        raise _not_in_playlist()
    await repository.touch(session, playlist.id)


def between(before: float | None, after: float | None) -> float | None:
    """The position for an entry placed between these neighbours (None: either end is
    open), or None when the gap is too narrow to split and the list needs renumbering."""
    if before is None and after is None:
        return STEP
    if before is None:
        assert after is not None
        return after - STEP
    if after is None:
        return before + STEP
    if after - before < MIN_GAP:
        return None
    middle = (before + after) / 2
    return middle if before < middle < after else None


async def move_video(
    session: AsyncSession,
    ref: str,
    principal: Principal | None,
    video_id: uuid.UUID,
    index: int,
) -> tuple[GalleryPlaylist, int]:
    """Put a video at ``index`` (0-based; past the end: last) in the caller's
    playlist, writing one row; returns the place it took."""
    playlist = await _owned(session, ref, principal, lock=True)
    entry = await repository.item(session, playlist.id, video_id)
    if entry is None:
        raise _not_in_playlist()
    total = await repository.count(session, playlist.id)
    index = min(index, total - 1)
    for _ in range(2):
        found = await repository.neighbours(session, playlist.id, entry.id, index)
        if index == 0:
            before, after = None, (found[0] if found else None)
        else:
            before = found[0] if found else None
            after = found[1] if len(found) > 1 else None
        position = between(before, after)
        if position is not None:
            break
        # Worn down by moves into one spot: spread the list out once and try again.
        await repository.renumber(session, playlist.id)
    else:  # pragma: no cover - a renumbered list always has STEP gaps
        raise Conflict("The playlist could not be reordered; try again.", code="reorder_failed")
    await repository.set_position(session, entry.id, position)
    await repository.touch(session, playlist.id)
    return playlist, index
