"""The SQL of reports, account blocks and the moderation log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.moderation.models import (
    BlockScope,
    GalleryModerationAction,
    GalleryReport,
    GalleryUserBlock,
    ModerationActionType,
    ReportReason,
    ReportStatus,
    TargetType,
)
from videoforge.infra.db import utcnow


def _rowcount(result: Any) -> int:
    cursor: CursorResult[Any] = result
    return int(cursor.rowcount)


# ------------------------------------------------------------------------ blocks
async def is_blocked(session: AsyncSession, user_id: str, scope: BlockScope) -> bool:
    row = await session.get(GalleryUserBlock, (user_id, scope))
    return row is not None


async def get_block(
    session: AsyncSession, user_id: str, scope: BlockScope
) -> GalleryUserBlock | None:
    return await session.get(GalleryUserBlock, (user_id, scope), populate_existing=True)


async def add_block(session: AsyncSession, block: GalleryUserBlock) -> None:
    session.add(block)
    await session.flush()


async def remove_block(session: AsyncSession, user_id: str, scope: BlockScope) -> bool:
    result = await session.execute(
        delete(GalleryUserBlock).where(
            GalleryUserBlock.user_id == user_id, GalleryUserBlock.scope == scope
        )
    )
    return _rowcount(result) == 1


async def list_blocks(session: AsyncSession, *, limit: int) -> list[GalleryUserBlock]:
    stmt = (
        select(GalleryUserBlock)
        .order_by(GalleryUserBlock.created_at.desc(), GalleryUserBlock.user_id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


# ----------------------------------------------------------------------- reports
async def open_report_of(
    session: AsyncSession, target_type: TargetType, target_id: uuid.UUID, reporter_id: str
) -> GalleryReport | None:
    stmt = select(GalleryReport).where(
        GalleryReport.target_type == target_type,
        GalleryReport.target_id == target_id,
        GalleryReport.reporter_id == reporter_id,
        GalleryReport.status == ReportStatus.OPEN,
    )
    return (await session.execute(stmt)).scalars().first()


async def add_report(session: AsyncSession, report: GalleryReport) -> None:
    session.add(report)
    await session.flush()


async def resolve(
    session: AsyncSession,
    target_type: TargetType,
    target_id: uuid.UUID,
    *,
    status: ReportStatus,
    by: str,
) -> int:
    """Close the target's open reports; how many were open."""
    result = await session.execute(
        update(GalleryReport)
        .where(
            GalleryReport.target_type == target_type,
            GalleryReport.target_id == target_id,
            GalleryReport.status == ReportStatus.OPEN,
        )
        .values(status=status, resolved_at=utcnow(), resolved_by=by)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


@dataclass(frozen=True)
class ReportGroup:
    target_type: TargetType
    target_id: uuid.UUID
    video_id: uuid.UUID
    count: int
    first_at: datetime
    last_at: datetime
    reasons: dict[ReportReason, int]
    notes: list[str]


async def open_groups(
    session: AsyncSession, *, offset: int, limit: int
) -> tuple[list[ReportGroup], bool]:
    """Targets with open reports, most reported first (then the most recent); and
    whether there are more."""
    count = func.count().label("n")
    last = func.max(GalleryReport.created_at).label("last_at")
    groups = (
        await session.execute(
            select(
                GalleryReport.target_type,
                GalleryReport.target_id,
                func.min(GalleryReport.video_id),
                count,
                func.min(GalleryReport.created_at),
                last,
            )
            .where(GalleryReport.status == ReportStatus.OPEN)
            .group_by(GalleryReport.target_type, GalleryReport.target_id)
            .order_by(count.desc(), last.desc(), GalleryReport.target_id)
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    more = len(groups) > limit
    groups = groups[:limit]
    ids = [row[1] for row in groups]
    reasons: dict[uuid.UUID, dict[ReportReason, int]] = {i: {} for i in ids}
    notes: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(
            select(GalleryReport.target_id, GalleryReport.reason, GalleryReport.note)
            .where(GalleryReport.status == ReportStatus.OPEN, GalleryReport.target_id.in_(ids))
            .order_by(GalleryReport.created_at.desc())
        )
        for target_id, reason, note in rows:
            per = reasons[target_id]
            per[reason] = per.get(reason, 0) + 1
            if note and len(notes[target_id]) < 5:
                notes[target_id].append(note)
    result = [
        ReportGroup(
            target_type=TargetType(row[0]),
            target_id=row[1],
            video_id=row[2],
            count=int(row[3]),
            first_at=row[4],
            last_at=row[5],
            reasons=reasons[row[1]],
            notes=notes[row[1]],
        )
        for row in groups
    ]
    return result, more


# ------------------------------------------------------------------------- log
async def record(
    session: AsyncSession,
    *,
    actor_id: str,
    action: ModerationActionType,
    target_type: str,
    target_id: str,
    video_id: uuid.UUID | None = None,
    note: str | None = None,
) -> GalleryModerationAction:
    row = GalleryModerationAction(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        video_id=video_id,
        note=note,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def actions_page(
    session: AsyncSession, *, before_id: int | None, limit: int
) -> list[GalleryModerationAction]:
    """Newest first; ``before_id`` is the last id of the previous page."""
    stmt = select(GalleryModerationAction).order_by(GalleryModerationAction.id.desc())
    if before_id is not None:
        stmt = stmt.where(GalleryModerationAction.id < before_id)
    return list((await session.execute(stmt.limit(limit))).scalars())
