"""Routes of storage accounting: the caller's usage, deleting all of the caller's videos
(the gateway's account deletion), and the admins' usage list and quotas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from videoforge.gallery import deletions
from videoforge.gallery.api import InfraDep, User
from videoforge.gallery.usage import repository, service
from videoforge.gallery.usage.schemas import QuotaUpdate, UsagePage, UsageRead, VideosDeleted
from videoforge.infra.auth.principal import Principal, require_admin
from videoforge.infra.db import session_scope
from videoforge.infra.errors import UnprocessableEntity
from videoforge.infra.openapi import error_responses

Admin = Annotated[Principal, Depends(require_admin)]
router = APIRouter(responses=error_responses(), tags=["storage"])


@router.get("/api/gallery/me/usage", response_model=UsageRead)
async def my_usage(infra: InfraDep, principal: User) -> UsageRead:
    """What the caller's videos hold in storage (originals and every output), what
    pending uploads reserve, and the caller's quota (null: none)."""
    async with infra.sessions() as session:
        return await service.usage_of(session, infra.settings, principal.user_id)


@router.delete("/api/gallery/me/videos", response_model=VideosDeleted)
async def delete_my_videos(infra: InfraDep, principal: User) -> VideosDeleted:
    """Delete every video of the caller and, through the deletion outbox, every stored
    object of them (used when an account is deleted), with their ratings, comments,
    playlists and webhooks. Only the token's owner's; repeating it is harmless."""
    async with session_scope(infra.sessions) as session:
        count, pending = await service.delete_all_of(session, principal)
    await deletions.carry_out(infra.sessions, infra.storage, pending)
    return VideosDeleted(deleted=count)


@router.get("/api/gallery/admin/usage", response_model=UsagePage)
async def usage_list(
    infra: InfraDep,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> UsagePage:
    """Storage per user, the largest first, with each user's quota (admins only)."""
    async with infra.sessions() as session:
        rows = await repository.usage_rows(session, limit=limit, offset=offset)
    default = infra.settings.storage_quota_bytes
    return UsagePage(
        items=[
            UsageRead(
                user_id=user,
                used_bytes=used,
                videos=count,
                quota_bytes=own if own is not None else default,
                quota_is_custom=own is not None,
                owner_name=name,
            )
            for user, used, count, own, name in rows
        ]
    )


@router.put("/api/gallery/admin/users/{user_id}/quota", response_model=UsageRead)
async def set_quota(user_id: str, body: QuotaUpdate, infra: InfraDep, admin: Admin) -> UsageRead:
    """Set one user's quota in bytes (admins only); null returns them to the instance
    default (``STORAGE_QUOTA_BYTES``). What is stored already stays; only new uploads are
    refused over it."""
    user_id = user_id.strip()
    if not user_id or len(user_id) > 255:
        raise UnprocessableEntity("That is not a user id.", code="validation_error")
    async with session_scope(infra.sessions) as session:
        await repository.set_quota(session, user_id, body.quota_bytes, admin.user_id)
        return await service.usage_of(session, infra.settings, user_id)
