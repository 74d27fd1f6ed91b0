"""Routes of comments: threads, replies, edits, deletes, pins and the approval queue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from videoforge.gallery import limits
from videoforge.gallery.api import InfraDep, MaybeUser, User, client_ip
from videoforge.gallery.comments import service
from videoforge.gallery.comments.schemas import (
    PAGE_MAX,
    CommentCreate,
    CommentListStatus,
    CommentPage,
    CommentRead,
    CommentSort,
    CommentUpdate,
)
from videoforge.gallery.moderation import service as moderation
from videoforge.infra.db import session_scope
from videoforge.infra.openapi import error_responses

router = APIRouter(responses=error_responses(), tags=["comments"])

Cursor = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX)]


def _page(page: service.Page, principal: MaybeUser) -> CommentPage:
    return CommentPage(
        items=[service.to_read(c, page.video, principal) for c in page.items],
        next_cursor=page.next_cursor,
        comment_policy=page.video.comment_policy,
        comments_count=page.video.comments_count,
    )


@router.get("/api/gallery/videos/{video_id}/comments", response_model=CommentPage)
async def list_comments(
    video_id: uuid.UUID,
    infra: InfraDep,
    principal: MaybeUser,
    sort: CommentSort = CommentSort.NEWEST,
    comment_status: Annotated[CommentListStatus, Query(alias="status")] = (
        CommentListStatus.VISIBLE
    ),
    cursor: Cursor = None,
    limit: Limit = 20,
) -> CommentPage:
    """Top-level comments of a video the caller can see (404 otherwise, exactly as the
    video), `newest` or `oldest` first, the pinned one ahead of them on the first page.
    Each has its `replies_count`; list replies with `/api/gallery/comments/{id}/replies`.
    Page on with `cursor` (the previous `next_cursor`). `status=held` is the owner's
    approval queue (comments and replies waiting). With comments turned off, the list
    is empty."""
    async with session_scope(infra.sessions) as session:
        page = await service.list_comments(
            session,
            video_id,
            principal,
            sort=sort,
            status=comment_status,
            cursor=cursor,
            limit=limit,
        )
    return _page(page, principal)


@router.post(
    "/api/gallery/videos/{video_id}/comments",
    response_model=CommentRead,
    status_code=status.HTTP_201_CREATED,
)
async def post_comment(
    video_id: uuid.UUID, request: Request, infra: InfraDep, principal: User, body: CommentCreate
) -> CommentRead:
    """Comment on a video (plain text, up to 2,000 characters), or reply with
    `parent_id` (a reply to a reply joins the top-level comment's thread). Held for the
    owner's approval (`status: held`) when the video holds comments or the text has a
    blocked word. 403 `comments_disabled` when comments are off, `commenting_blocked`
    for a blocked account; 409 `comment_held` for a reply to a comment still waiting for
    approval; rate-limited per user and per address (429, `Retry-After`)."""
    await limits.check(
        infra.cache,
        infra.settings,
        limits.COMMENT,
        ip=client_ip(request),
        user=principal.user_id,
    )
    async with session_scope(infra.sessions) as session:
        comment, video = await service.create_comment(
            session,
            video_id,
            principal,
            body,
            blocked_words=infra.settings.comment_blocked_words,
        )
    return service.to_read(comment, video, principal)


@router.get("/api/gallery/comments/{comment_id}", response_model=CommentRead)
async def get_comment(comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser) -> CommentRead:
    """One comment (404 when the caller cannot see it or its video)."""
    async with session_scope(infra.sessions) as session:
        comment, video = await service.visible_comment(session, comment_id, principal)
    return service.to_read(comment, video, principal)


@router.get("/api/gallery/comments/{comment_id}/replies", response_model=CommentPage)
async def list_replies(
    comment_id: uuid.UUID,
    infra: InfraDep,
    principal: MaybeUser,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> CommentPage:
    """Replies to a top-level comment, oldest first, paged with `cursor`."""
    async with session_scope(infra.sessions) as session:
        page = await service.list_replies(
            session, comment_id, principal, cursor=cursor, limit=limit
        )
    return _page(page, principal)


@router.patch("/api/gallery/comments/{comment_id}", response_model=CommentRead)
async def edit_comment(
    comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser, body: CommentUpdate
) -> CommentRead:
    """Change the text of one's own comment (`edited_at` is set)."""
    async with session_scope(infra.sessions) as session:
        comment, video = await service.edit_comment(
            session,
            comment_id,
            principal,
            body,
            blocked_words=infra.settings.comment_blocked_words,
        )
    return service.to_read(comment, video, principal)


@router.delete(
    "/api/gallery/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_comment(comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser) -> Response:
    """Delete a comment: its author, the video's owner, or an admin (logged as a
    moderation action). One with replies stays as "comment deleted"."""
    async with session_scope(infra.sessions) as session:
        deleted = await service.delete_comment(session, comment_id, principal)
        if deleted.as_admin and principal is not None:
            await moderation.record_comment_deletion(session, principal, deleted, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _pin(
    comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser, pin: bool
) -> CommentRead:
    async with session_scope(infra.sessions) as session:
        comment, video = await service.set_pinned(session, comment_id, principal, pin)
    return service.to_read(comment, video, principal)


@router.post("/api/gallery/comments/{comment_id}/pin", response_model=CommentRead)
async def pin_comment(comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser) -> CommentRead:
    """Pin a top-level comment above the others (the video's owner; one at a time)."""
    return await _pin(comment_id, infra, principal, True)


@router.post("/api/gallery/comments/{comment_id}/unpin", response_model=CommentRead)
async def unpin_comment(
    comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser
) -> CommentRead:
    """Unpin a comment (the video's owner)."""
    return await _pin(comment_id, infra, principal, False)


async def _review(
    comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser, approve: bool
) -> CommentRead:
    async with session_scope(infra.sessions) as session:
        comment, video = await service.review(session, comment_id, principal, approve)
    return service.to_read(comment, video, principal)


@router.post("/api/gallery/comments/{comment_id}/approve", response_model=CommentRead)
async def approve_comment(
    comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser
) -> CommentRead:
    """Publish a held comment (the video's owner); 409 `comment_not_held` otherwise."""
    return await _review(comment_id, infra, principal, True)


@router.post("/api/gallery/comments/{comment_id}/reject", response_model=CommentRead)
async def reject_comment(
    comment_id: uuid.UUID, infra: InfraDep, principal: MaybeUser
) -> CommentRead:
    """Refuse a held comment (the video's owner): nobody will see it."""
    return await _review(comment_id, infra, principal, False)
