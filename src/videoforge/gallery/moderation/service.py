"""Reporting, and what administrators do about reports. Every administrator action is
written to the moderation log in the transaction that carries it out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import service as videos
from videoforge.gallery.access import not_found
from videoforge.gallery.comments import repository as comments_repository
from videoforge.gallery.comments import service as comments
from videoforge.gallery.models import GalleryVideo
from videoforge.gallery.moderation import repository
from videoforge.gallery.moderation.models import (
    BlockScope,
    GalleryReport,
    GalleryUserBlock,
    ModerationActionType,
    ReportStatus,
    TargetType,
)
from videoforge.gallery.moderation.schemas import (
    ReportCreate,
    ReportedComment,
    ReportedVideo,
    ReportGroupRead,
)
from videoforge.infra.auth.principal import Principal
from videoforge.infra.db import utcnow
from videoforge.infra.errors import Conflict, Forbidden, NotFound


def _already() -> Conflict:
    return Conflict("You have already reported this.", code="already_reported")


async def _add_report(session: AsyncSession, report: GalleryReport) -> GalleryReport:
    if await repository.open_report_of(
        session, report.target_type, report.target_id, report.reporter_id
    ):
        raise _already()
    try:
        # A savepoint: a racing duplicate (the unique index on open reports) is a 409,
        # and the request's transaction stays usable.
        async with session.begin_nested():
            await repository.add_report(session, report)
    except IntegrityError:
        raise _already() from None
    return report


async def report_video(
    session: AsyncSession, video_id: uuid.UUID, principal: Principal, data: ReportCreate
) -> GalleryReport:
    """Report a video the caller can see (404 otherwise); once per open report."""
    video = await videos.get_visible(session, video_id, principal, keep=True)
    return await _add_report(
        session,
        GalleryReport(
            id=uuid.uuid4(),
            target_type=TargetType.VIDEO,
            target_id=video.id,
            video_id=video.id,
            comment_id=None,
            reporter_id=principal.user_id,
            reason=data.reason,
            note=data.note,
            status=ReportStatus.OPEN,
            created_at=utcnow(),
        ),
    )


async def report_comment(
    session: AsyncSession, comment_id: uuid.UUID, principal: Principal, data: ReportCreate
) -> GalleryReport:
    """Report a comment the caller can see (404 otherwise); once per open report."""
    comment, _ = await comments.visible_comment(session, comment_id, principal, lock=True)
    if comment.deleted:
        raise comments.comment_not_found()
    return await _add_report(
        session,
        GalleryReport(
            id=uuid.uuid4(),
            target_type=TargetType.COMMENT,
            target_id=comment.id,
            video_id=comment.video_id,
            comment_id=comment.id,
            reporter_id=principal.user_id,
            reason=data.reason,
            note=data.note,
            status=ReportStatus.OPEN,
            created_at=utcnow(),
        ),
    )


async def ensure_not_blocked(session: AsyncSession, user_id: str, scope: BlockScope) -> None:
    """403 with a stable code when an administrator blocked the account for ``scope``."""
    if await repository.is_blocked(session, user_id, scope):
        if scope is BlockScope.UPLOAD:
            raise Forbidden("Your account may not upload videos.", code="uploading_blocked")
        raise Forbidden("Your account may not comment on this site.", code="commenting_blocked")


# ------------------------------------------------------------------------ queue
async def report_queue(
    session: AsyncSession, *, page: int, per_page: int
) -> tuple[list[ReportGroupRead], bool]:
    groups, more = await repository.open_groups(
        session, offset=(page - 1) * per_page, limit=per_page
    )
    items: list[ReportGroupRead] = []
    for group in groups:
        video = await session.get(GalleryVideo, group.video_id)
        comment = None
        if group.target_type is TargetType.COMMENT:
            comment = await comments_repository.get(session, group.target_id)
        items.append(
            ReportGroupRead(
                target_type=group.target_type,
                target_id=group.target_id,
                video_id=group.video_id,
                count=group.count,
                reasons=group.reasons,
                notes=group.notes,
                first_reported_at=group.first_at,
                last_reported_at=group.last_at,
                video=None
                if video is None
                else ReportedVideo(
                    id=video.id,
                    title=video.title,
                    user_id=video.user_id,
                    owner_name=video.owner_name,
                    visibility=video.visibility,
                    hidden=video.hidden,
                ),
                comment=None
                if comment is None
                else ReportedComment(
                    id=comment.id,
                    text=None if comment.deleted else comment.text,
                    author_id=comment.author_id,
                    author_name=comment.author_name,
                    deleted=comment.deleted,
                ),
            )
        )
    return items, more


# ---------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Outcome:
    action: ModerationActionType
    resolved_reports: int


async def dismiss(
    session: AsyncSession,
    admin: Principal,
    target_type: TargetType,
    target_id: uuid.UUID,
    note: str | None,
) -> Outcome:
    """Close the target's open reports without acting on it."""
    resolved = await repository.resolve(
        session, target_type, target_id, status=ReportStatus.DISMISSED, by=admin.user_id
    )
    if not resolved:
        raise NotFound("There are no open reports of this.", code="no_open_reports")
    await repository.record(
        session,
        actor_id=admin.user_id,
        action=ModerationActionType.DISMISS,
        target_type=target_type.value,
        target_id=target_id.hex,
        note=note,
    )
    return Outcome(ModerationActionType.DISMISS, resolved)


async def set_hidden(
    session: AsyncSession, admin: Principal, video_id: uuid.UUID, hidden: bool, note: str | None
) -> Outcome:
    """Hide a video from everyone but its owner and admins (404 to them in listings,
    detail, streams and comments), or show it again. Hiding closes its open reports."""
    video = await videos.load_video(session, video_id)
    if video is None:
        raise not_found()
    result = await session.execute(
        update(GalleryVideo)
        .where(GalleryVideo.id == video.id, GalleryVideo.hidden.is_(not hidden))
        .values(hidden=hidden, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    cursor: CursorResult[tuple[()]] = result  # type: ignore[assignment]
    action = ModerationActionType.HIDE_VIDEO if hidden else ModerationActionType.UNHIDE_VIDEO
    resolved = 0
    if hidden:
        resolved = await repository.resolve(
            session, TargetType.VIDEO, video.id, status=ReportStatus.ACTIONED, by=admin.user_id
        )
    if cursor.rowcount:
        await repository.record(
            session,
            actor_id=admin.user_id,
            action=action,
            target_type=TargetType.VIDEO.value,
            target_id=video.id.hex,
            video_id=video.id,
            note=note,
        )
    return Outcome(action, resolved)


async def delete_comment(
    session: AsyncSession, admin: Principal, comment_id: uuid.UUID, note: str | None
) -> Outcome:
    """Delete a comment as an administrator; its open reports are closed as actioned
    (or go with it, when the row goes)."""
    deleted = await comments.delete_comment(session, comment_id, admin)
    resolved = await repository.resolve(
        session, TargetType.COMMENT, comment_id, status=ReportStatus.ACTIONED, by=admin.user_id
    )
    await record_comment_deletion(session, admin, deleted, note)
    return Outcome(ModerationActionType.DELETE_COMMENT, resolved)


async def record_comment_deletion(
    session: AsyncSession, admin: Principal, deleted: comments.Deleted, note: str | None
) -> None:
    await repository.record(
        session,
        actor_id=admin.user_id,
        action=ModerationActionType.DELETE_COMMENT,
        target_type=TargetType.COMMENT.value,
        target_id=deleted.comment.id.hex,
        video_id=deleted.video.id,
        note=note,
    )


async def block(
    session: AsyncSession, admin: Principal, user_id: str, scope: BlockScope, reason: str | None
) -> tuple[GalleryUserBlock, bool]:
    """Block the account for ``scope``; whether the block is new."""
    existing = await repository.get_block(session, user_id, scope)
    if existing is not None:
        return existing, False
    row = GalleryUserBlock(
        user_id=user_id, scope=scope, reason=reason, created_by=admin.user_id, created_at=utcnow()
    )
    try:
        async with session.begin_nested():
            await repository.add_block(session, row)
    except IntegrityError:
        # Blocked by another admin at the same moment: the same outcome.
        raced = await repository.get_block(session, user_id, scope)
        if raced is None:
            raise
        return raced, False
    await repository.record(
        session,
        actor_id=admin.user_id,
        action=ModerationActionType.BLOCK_USER,
        target_type="user",
        target_id=user_id,
        note=f"{scope.value}: {reason}" if reason else scope.value,
    )
    return row, True


async def unblock(session: AsyncSession, admin: Principal, user_id: str, scope: BlockScope) -> None:
    if not await repository.remove_block(session, user_id, scope):
        raise NotFound("The account is not blocked for this.", code="block_not_found")
    await repository.record(
        session,
        actor_id=admin.user_id,
        action=ModerationActionType.UNBLOCK_USER,
        target_type="user",
        target_id=user_id,
        note=scope.value,
    )
