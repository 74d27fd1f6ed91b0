"""The rules of comments: who may read, write, edit, delete, pin and approve them.

Visibility follows the video (a video the caller cannot see has no comments for them:
404, exactly as the video). Services only flush; the request's ``session_scope``
commits. Every change of a comment's visibility moves the counters with it
(:func:`repository.count_visible`) in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import service as videos
from videoforge.gallery.access import can_view, is_owner, is_owner_or_admin
from videoforge.gallery.comments import repository
from videoforge.gallery.comments.cursors import decode_cursor, encode_cursor
from videoforge.gallery.comments.models import CommentStatus, GalleryComment, HoldReason
from videoforge.gallery.comments.repository import Viewer
from videoforge.gallery.comments.schemas import (
    CommentCreate,
    CommentListStatus,
    CommentRead,
    CommentSort,
    CommentUpdate,
)
from videoforge.gallery.comments.words import contains_blocked
from videoforge.gallery.models import CommentPolicy, GalleryVideo
from videoforge.gallery.moderation import repository as moderation
from videoforge.gallery.moderation.models import BlockScope
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized


def comment_not_found() -> NotFound:
    return NotFound("No such comment.", code="comment_not_found")


def _login() -> Unauthorized:
    return Unauthorized("Log in to do this.", code="auth_required")


@dataclass(frozen=True)
class Page:
    items: list[GalleryComment]
    next_cursor: str | None
    video: GalleryVideo


# ------------------------------------------------------------------------ reading
def _viewer(video: GalleryVideo, principal: Principal | None) -> Viewer:
    return Viewer(
        user_id=principal.user_id if principal else None,
        sees_all_held=is_owner_or_admin(video, principal),
    )


def _page(
    kind: str, rows: list[GalleryComment], limit: int
) -> tuple[list[GalleryComment], str | None]:
    more = len(rows) > limit
    items = rows[:limit]
    return items, encode_cursor(kind, items[-1]) if more and items else None


async def list_comments(
    session: AsyncSession,
    video_id: uuid.UUID,
    principal: Principal | None,
    *,
    sort: CommentSort,
    status: CommentListStatus,
    cursor: str | None,
    limit: int,
) -> Page:
    """A page of top-level comments (the pinned one first, on the first page), or the
    owner's approval queue (``status=held``). With comments turned off, none are shown."""
    video = await videos.get_visible(session, video_id, principal)
    descending = sort is CommentSort.NEWEST
    if status is CommentListStatus.HELD:
        if principal is None:
            raise _login()
        if not is_owner_or_admin(video, principal):
            raise Forbidden("Only the video's owner can review held comments.", code="not_owner")
        kind = f"held:{sort.value}"
        after = decode_cursor(kind, cursor) if cursor else None
        rows = await repository.held_page(
            session, video.id, descending=descending, after=after, limit=limit + 1
        )
        items, next_cursor = _page(kind, rows, limit)
        return Page(items=items, next_cursor=next_cursor, video=video)

    kind = f"top:{sort.value}"
    after = decode_cursor(kind, cursor) if cursor else None
    if video.comment_policy is CommentPolicy.OFF:
        return Page(items=[], next_cursor=None, video=video)
    viewer = _viewer(video, principal)
    rows = await repository.top_level_page(
        session, video.id, viewer, descending=descending, after=after, limit=limit + 1
    )
    items, next_cursor = _page(kind, rows, limit)
    if after is None:
        pinned = await repository.pinned(session, video.id, viewer)
        if pinned is not None:
            items.insert(0, pinned)
    return Page(items=items, next_cursor=next_cursor, video=video)


async def visible_comment(
    session: AsyncSession,
    comment_id: uuid.UUID,
    principal: Principal | None,
    *,
    lock: bool = False,
) -> tuple[GalleryComment, GalleryVideo]:
    """The comment and its video, if the caller may see both; 404 otherwise.

    ``lock`` is for changes: the video is held first (FOR KEY SHARE), then the comment
    (FOR UPDATE). Every write takes its rows in that order — the video, the comments,
    the video's counters — as the video's deletion does (the video, then its comments
    by cascade), so two requests never wait on each other in a circle.
    """
    comment = await repository.get(session, comment_id)
    if comment is None:
        raise comment_not_found()
    video = await videos.load_video(session, comment.video_id, keep=lock)
    if video is None or not can_view(video, principal):
        raise comment_not_found()
    if lock:
        comment = await repository.get(session, comment_id, lock=True)
        if comment is None:
            raise comment_not_found()
    if video.comment_policy is CommentPolicy.OFF and not is_owner_or_admin(video, principal):
        raise comment_not_found()
    if comment.status is CommentStatus.REJECTED:
        raise comment_not_found()
    if comment.status is CommentStatus.HELD:
        mine = principal is not None and principal.user_id == comment.author_id
        if not mine and not is_owner_or_admin(video, principal):
            raise comment_not_found()
    return comment, video


async def list_replies(
    session: AsyncSession,
    comment_id: uuid.UUID,
    principal: Principal | None,
    *,
    cursor: str | None,
    limit: int,
) -> Page:
    """Replies to a top-level comment, oldest first."""
    comment, video = await visible_comment(session, comment_id, principal)
    if video.comment_policy is CommentPolicy.OFF:
        return Page(items=[], next_cursor=None, video=video)
    kind = f"replies:{comment.id.hex}"
    after = decode_cursor(kind, cursor) if cursor else None
    rows = await repository.replies_page(
        session, comment.id, _viewer(video, principal), after=after, limit=limit + 1
    )
    items, next_cursor = _page(kind, rows, limit)
    return Page(items=items, next_cursor=next_cursor, video=video)


def to_read(
    comment: GalleryComment, video: GalleryVideo, principal: Principal | None
) -> CommentRead:
    """The wire form. Why a comment is held is told to the owner (and admins) only."""
    return CommentRead(
        id=comment.id,
        video_id=comment.video_id,
        parent_id=comment.parent_id,
        author_id=comment.author_id,
        author_name=comment.author_name,
        text=None if comment.deleted else comment.text,
        status=comment.status,
        hold_reason=comment.hold_reason if is_owner_or_admin(video, principal) else None,
        deleted=comment.deleted,
        pinned=comment.pinned,
        by_owner=comment.author_id == video.user_id,
        replies_count=comment.replies_count,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
    )


# ------------------------------------------------------------------------ writing
async def _ensure_may_comment(session: AsyncSession, principal: Principal) -> None:
    if await moderation.is_blocked(session, principal.user_id, BlockScope.COMMENT):
        raise Forbidden("Your account may not comment on this site.", code="commenting_blocked")


def _hold(
    video: GalleryVideo, principal: Principal, text: str, blocked_words: Sequence[str]
) -> HoldReason | None:
    """Why a new comment waits for approval, or None to publish it at once. The
    owner's own comments never wait: they are the one who would approve them."""
    if is_owner(video, principal):
        return None
    if contains_blocked(text, blocked_words):
        return HoldReason.BLOCKED_WORDS
    if video.comment_policy is CommentPolicy.HELD:
        return HoldReason.POLICY
    return None


def _ensure_approved(parent: GalleryComment) -> None:
    """Replies only to a published comment: a held one is seen by its author and the
    owner alone, and a reply to it would be counted where nobody else can read it."""
    if parent.status is not CommentStatus.APPROVED:
        raise Conflict(
            "The comment is waiting for approval; reply once it is published.",
            code="comment_held",
        )


async def create_comment(
    session: AsyncSession,
    video_id: uuid.UUID,
    principal: Principal,
    data: CommentCreate,
    *,
    blocked_words: Sequence[str],
) -> tuple[GalleryComment, GalleryVideo]:
    """A new comment or reply by the caller; held when the video holds comments or
    the text contains a blocked word."""
    video = await videos.get_visible(session, video_id, principal, keep=True)
    await _ensure_may_comment(session, principal)
    if video.comment_policy is CommentPolicy.OFF:
        raise Forbidden("Comments are turned off for this video.", code="comments_disabled")
    parent_id: uuid.UUID | None = None
    if data.parent_id is not None:
        # Locked: a concurrent delete of the thread waits for this reply (and then keeps
        # a placeholder) instead of removing the row the reply points to. FOR UPDATE,
        # not FOR SHARE: two replies would otherwise both hold a share lock and then
        # both wait to update the thread's reply count.
        parent, _ = await visible_comment(session, data.parent_id, principal, lock=True)
        if parent.video_id != video.id:
            raise comment_not_found()
        _ensure_approved(parent)
        # One level of nesting, as YouTube: a reply to a reply joins its thread.
        top_id = parent.parent_id or parent.id
        parent, _ = await visible_comment(session, top_id, principal, lock=True)
        _ensure_approved(parent)
        parent_id = parent.id
    reason = _hold(video, principal, data.text, blocked_words)
    comment = GalleryComment(
        id=uuid.uuid4(),
        video_id=video.id,
        parent_id=parent_id,
        author_id=principal.user_id,
        author_name=principal.public_name,
        text=data.text,
        status=CommentStatus.HELD if reason else CommentStatus.APPROVED,
        hold_reason=reason,
        deleted=False,
        pinned=False,
        replies_count=0,
    )
    await repository.add(session, comment)
    if comment.status is CommentStatus.APPROVED:
        await repository.count_visible(session, comment, +1)
    return comment, video


async def edit_comment(
    session: AsyncSession,
    comment_id: uuid.UUID,
    principal: Principal | None,
    data: CommentUpdate,
    *,
    blocked_words: Sequence[str],
) -> tuple[GalleryComment, GalleryVideo]:
    """New text for one's own comment. A blocked word holds it again for approval."""
    # 404 before 401, as for videos: a stranger learns nothing of a private video.
    comment, video = await visible_comment(session, comment_id, principal, lock=True)
    if principal is None:
        raise _login()
    if comment.author_id != principal.user_id:
        raise Forbidden("Only its author can edit a comment.", code="not_author")
    if comment.deleted:
        raise comment_not_found()
    await _ensure_may_comment(session, principal)
    status, reason = comment.status, comment.hold_reason
    if contains_blocked(data.text, blocked_words) and not is_owner(video, principal):
        status, reason = CommentStatus.HELD, HoldReason.BLOCKED_WORDS
    if not await repository.set_text(
        session, comment.id, data.text, status=status, hold_reason=reason
    ):
        raise comment_not_found()
    if comment.status is CommentStatus.APPROVED and status is CommentStatus.HELD:
        await repository.count_visible(session, comment, -1)
    refreshed = await repository.get(session, comment.id)
    assert refreshed is not None
    return refreshed, video


@dataclass(frozen=True)
class Deleted:
    comment: GalleryComment
    video: GalleryVideo
    #: True when a placeholder stays (the comment had replies).
    placeholder: bool
    #: The caller deleted someone else's comment as an administrator (not as the
    #: author or the video's owner): a moderation action, to be logged.
    as_admin: bool


async def delete_comment(
    session: AsyncSession, comment_id: uuid.UUID, principal: Principal | None
) -> Deleted:
    """Delete a comment (its author, the video's owner, or an admin). A comment with
    replies leaves "comment deleted" in its place; a thread whose placeholder loses
    its last reply goes too."""
    # FOR UPDATE: a reply being added waits (or this waits for it), so "has replies"
    # below is true for every reply that will exist. 404 before 401, as for videos.
    comment, video = await visible_comment(session, comment_id, principal, lock=True)
    if principal is None:
        raise _login()
    author = comment.author_id == principal.user_id
    if not author and not is_owner_or_admin(video, principal):
        raise Forbidden(
            "Only its author or the video's owner can delete a comment.", code="not_author"
        )
    if comment.deleted:
        raise comment_not_found()
    visible = comment.status is CommentStatus.APPROVED
    placeholder = comment.parent_id is None and await repository.has_replies(session, comment.id)
    if placeholder:
        changed = await repository.mark_deleted(session, comment.id)
    else:
        changed = await repository.remove(session, comment.id)
    if not changed:
        raise comment_not_found()
    if visible:
        await repository.count_visible(session, comment, -1)
    if comment.parent_id is not None:
        parent = await repository.get(session, comment.parent_id, lock=True)
        if (
            parent is not None
            and parent.deleted
            and not await repository.has_replies(session, parent.id)
        ):
            await repository.remove(session, parent.id)
    as_admin = principal.is_admin and not author and not is_owner(video, principal)
    return Deleted(comment=comment, video=video, placeholder=placeholder, as_admin=as_admin)


async def _owned_comment(
    session: AsyncSession, comment_id: uuid.UUID, principal: Principal | None
) -> tuple[GalleryComment, GalleryVideo]:
    # 404 before 401, as for videos: a stranger learns nothing of a private video.
    comment, video = await visible_comment(session, comment_id, principal, lock=True)
    if principal is None:
        raise _login()
    if not is_owner_or_admin(video, principal):
        raise Forbidden("Only the video's owner can do this.", code="not_owner")
    return comment, video


async def set_pinned(
    session: AsyncSession, comment_id: uuid.UUID, principal: Principal | None, pinned: bool
) -> tuple[GalleryComment, GalleryVideo]:
    """Pin a comment to the top of its video's comments (one at a time), or unpin it."""
    comment, video = await _owned_comment(session, comment_id, principal)
    if comment.deleted:
        raise comment_not_found()
    if pinned:
        if comment.parent_id is not None:
            raise BadRequest("Only top-level comments can be pinned.", code="cannot_pin_reply")
        if comment.status is not CommentStatus.APPROVED:
            raise Conflict("Approve the comment before pinning it.", code="comment_held")
        try:
            async with session.begin_nested():
                await repository.unpin_all(session, video.id)
                await repository.set_pinned(session, comment.id, True)
        except IntegrityError:
            # Another pin of this video won the race for the one pinned slot.
            raise Conflict(
                "Another comment was pinned at the same time; try again.", code="pin_conflict"
            ) from None
    else:
        await repository.set_pinned(session, comment.id, False)
    refreshed = await repository.get(session, comment.id)
    assert refreshed is not None
    return refreshed, video


async def review(
    session: AsyncSession, comment_id: uuid.UUID, principal: Principal | None, approve: bool
) -> tuple[GalleryComment, GalleryVideo]:
    """Approve (publish) or reject (hide for good) a held comment (the video's owner)."""
    comment, video = await _owned_comment(session, comment_id, principal)
    new = CommentStatus.APPROVED if approve else CommentStatus.REJECTED
    if not await repository.move_status(
        session, comment.id, expected=[CommentStatus.HELD], new=new
    ):
        raise Conflict("The comment is not waiting for approval.", code="comment_not_held")
    if approve:
        await repository.count_visible(session, comment, +1)
    refreshed = await repository.get(session, comment.id)
    assert refreshed is not None
    return refreshed, video
