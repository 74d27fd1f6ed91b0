"""Ratings on the wire."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class RatingChoice(StrEnum):
    LIKE = "like"
    DISLIKE = "dislike"
    NONE = "none"


class RatingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: RatingChoice


class RatingRead(BaseModel):
    """The video's counts after the change, and the caller's rating (null: none)."""

    video_id: uuid.UUID
    likes: int
    dislikes: int
    my_rating: str | None
