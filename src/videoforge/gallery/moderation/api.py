"""Routes of reports (anyone signed in) and of moderation (administrators only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from videoforge.gallery import limits
from videoforge.gallery.api import InfraDep, User, client_ip
from videoforge.gallery.moderation import repository, service
from videoforge.gallery.moderation.models import BlockScope, GalleryReport, TargetType
from videoforge.gallery.moderation.schemas import (
    BlockCreate,
    BlockList,
    BlockRead,
    ModerationActionRead,
    ModerationLog,
    ModerationNote,
    ModerationOutcome,
    ReportCreate,
    ReportQueue,
    ReportRead,
)
from videoforge.infra.auth.principal import Principal, require_admin
from videoforge.infra.db import session_scope
from videoforge.infra.errors import BadRequest
from videoforge.infra.openapi import error_responses

router = APIRouter(responses=error_responses())

Admin = Annotated[Principal, Depends(require_admin)]
#: Account ids come from tokens: printable, no control characters (PostgreSQL refuses NUL).
UserId = Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _report(report: GalleryReport) -> ReportRead:
    return ReportRead(
        id=report.id,
        target_type=report.target_type,
        target_id=report.target_id,
        video_id=report.video_id,
        comment_id=report.comment_id,
        reason=report.reason,
        note=report.note,
        status=report.status,
        created_at=report.created_at,
    )


async def _limit(request: Request, infra: InfraDep, principal: Principal) -> None:
    await limits.check(
        infra.cache, infra.settings, limits.REPORT, ip=client_ip(request), user=principal.user_id
    )


# ---------------------------------------------------------------------- reports
@router.post(
    "/api/gallery/videos/{video_id}/reports",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    tags=["reports"],
)
async def report_video(
    video_id: uuid.UUID, request: Request, infra: InfraDep, principal: User, body: ReportCreate
) -> ReportRead:
    """Report a video to the administrators: a `reason` (spam, harassment, hate,
    violence, sexual, copyright, other) and an optional `note` (up to 1,000
    characters). Once per user while the report is open (409 `already_reported`)."""
    await _limit(request, infra, principal)
    async with session_scope(infra.sessions) as session:
        report = await service.report_video(session, video_id, principal, body)
    return _report(report)


@router.post(
    "/api/gallery/comments/{comment_id}/reports",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    tags=["reports"],
)
async def report_comment(
    comment_id: uuid.UUID, request: Request, infra: InfraDep, principal: User, body: ReportCreate
) -> ReportRead:
    """Report a comment (as a video is reported)."""
    await _limit(request, infra, principal)
    async with session_scope(infra.sessions) as session:
        report = await service.report_comment(session, comment_id, principal, body)
    return _report(report)


# ------------------------------------------------------------------- moderation
@router.get("/api/gallery/moderation/reports", response_model=ReportQueue, tags=["moderation"])
async def report_queue(
    infra: InfraDep,
    _: Admin,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ReportQueue:
    """Open reports grouped by what they report (a video or a comment), most reported
    first: counts per reason, a few notes, and the target (admins only)."""
    async with session_scope(infra.sessions) as session:
        items, more = await service.report_queue(session, page=page, per_page=per_page)
    return ReportQueue(items=items, page=page, per_page=per_page, has_more=more)


def _outcome(outcome: service.Outcome) -> ModerationOutcome:
    return ModerationOutcome(action=outcome.action, resolved_reports=outcome.resolved_reports)


@router.post(
    "/api/gallery/moderation/reports/{target_type}/{target_id}/dismiss",
    response_model=ModerationOutcome,
    tags=["moderation"],
)
async def dismiss_reports(
    target_type: TargetType,
    target_id: uuid.UUID,
    infra: InfraDep,
    admin: Admin,
    body: ModerationNote | None = None,
) -> ModerationOutcome:
    """Close a target's open reports without acting on it (404 `no_open_reports`)."""
    async with session_scope(infra.sessions) as session:
        outcome = await service.dismiss(
            session, admin, target_type, target_id, body.note if body else None
        )
    return _outcome(outcome)


@router.post(
    "/api/gallery/moderation/videos/{video_id}/hide",
    response_model=ModerationOutcome,
    tags=["moderation"],
)
async def hide_video(
    video_id: uuid.UUID, infra: InfraDep, admin: Admin, body: ModerationNote | None = None
) -> ModerationOutcome:
    """Hide a video: 404 to everyone but its owner and admins, in listings, detail,
    streams and comments. Closes its open reports."""
    async with session_scope(infra.sessions) as session:
        outcome = await service.set_hidden(
            session, admin, video_id, True, body.note if body else None
        )
    return _outcome(outcome)


@router.post(
    "/api/gallery/moderation/videos/{video_id}/unhide",
    response_model=ModerationOutcome,
    tags=["moderation"],
)
async def unhide_video(
    video_id: uuid.UUID, infra: InfraDep, admin: Admin, body: ModerationNote | None = None
) -> ModerationOutcome:
    """Show a hidden video again."""
    async with session_scope(infra.sessions) as session:
        outcome = await service.set_hidden(
            session, admin, video_id, False, body.note if body else None
        )
    return _outcome(outcome)


@router.post(
    "/api/gallery/moderation/comments/{comment_id}/delete",
    response_model=ModerationOutcome,
    tags=["moderation"],
)
async def delete_comment(
    comment_id: uuid.UUID, infra: InfraDep, admin: Admin, body: ModerationNote | None = None
) -> ModerationOutcome:
    """Delete a reported comment; closes its open reports."""
    async with session_scope(infra.sessions) as session:
        outcome = await service.delete_comment(
            session, admin, comment_id, body.note if body else None
        )
    return _outcome(outcome)


def _block(row: object) -> BlockRead:
    return BlockRead.model_validate(row, from_attributes=True)


@router.get("/api/gallery/moderation/blocks", response_model=BlockList, tags=["moderation"])
async def list_blocks(infra: InfraDep, _: Admin) -> BlockList:
    """Blocked accounts, newest first (up to 500)."""
    async with session_scope(infra.sessions) as session:
        rows = await repository.list_blocks(session, limit=500)
    return BlockList(items=[_block(r) for r in rows])


@router.put(
    "/api/gallery/moderation/blocks/{scope}",
    response_model=BlockRead,
    status_code=status.HTTP_201_CREATED,
    tags=["moderation"],
    responses={200: {"model": BlockRead, "description": "Already blocked."}},
)
async def block_user(
    scope: BlockScope,
    user_id: UserId,
    infra: InfraDep,
    admin: Admin,
    response: Response,
    body: BlockCreate | None = None,
) -> BlockRead:
    """Block an account (`user_id`) from commenting (`comment`: 403
    `commenting_blocked`) or uploading (`upload`: 403 `uploading_blocked`)."""
    async with session_scope(infra.sessions) as session:
        row, created = await service.block(
            session, admin, user_id, scope, body.reason if body else None
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _block(row)


@router.delete(
    "/api/gallery/moderation/blocks/{scope}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["moderation"],
)
async def unblock_user(
    scope: BlockScope, user_id: UserId, infra: InfraDep, admin: Admin
) -> Response:
    """Lift a block (404 `block_not_found` when there is none)."""
    async with session_scope(infra.sessions) as session:
        await service.unblock(session, admin, user_id, scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/gallery/moderation/actions", response_model=ModerationLog, tags=["moderation"])
async def moderation_log(
    infra: InfraDep,
    _: Admin,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ModerationLog:
    """Every moderation action — who, what, which target, when — newest first."""
    before: int | None = None
    if cursor is not None:
        if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
            raise BadRequest("The cursor is invalid.", code="invalid_cursor")
        before = int(cursor)
    async with session_scope(infra.sessions) as session:
        rows = await repository.actions_page(session, before_id=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ModerationLog(
        items=[ModerationActionRead.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )
