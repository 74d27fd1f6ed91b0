"""Route of ratings."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from videoforge.gallery.api import InfraDep, User
from videoforge.gallery.ratings import service
from videoforge.gallery.ratings.schemas import RatingRead, RatingUpdate
from videoforge.infra.db import session_scope
from videoforge.infra.openapi import error_responses

router = APIRouter(responses=error_responses(), tags=["ratings"])


@router.put("/api/gallery/videos/{video_id}/rating", response_model=RatingRead)
async def rate_video(
    video_id: uuid.UUID, infra: InfraDep, principal: User, body: RatingUpdate
) -> RatingRead:
    """Like or dislike a video the caller can see, or take the rating back (`none`).
    One rating per user; setting the same one again changes nothing. Answers the
    video's counts after the change."""
    async with session_scope(infra.sessions) as session:
        video, value = await service.rate(session, video_id, principal, body.rating)
    return RatingRead(
        video_id=video.id,
        likes=video.likes,
        dislikes=video.dislikes,
        my_rating=None if value is None else value.value,
    )
