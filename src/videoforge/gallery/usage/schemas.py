"""Wire format of storage accounting."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UsageRead(BaseModel):
    """One user's storage: what their videos hold, and their quota (null: none)."""

    user_id: str
    used_bytes: int
    #: Uploads handed out and not confirmed yet count against the quota too.
    reserved_bytes: int = 0
    quota_bytes: int | None = None
    #: Whether ``quota_bytes`` is this user's own (set by an admin) or the default.
    quota_is_custom: bool = False
    videos: int = 0
    #: The public name on the user's videos (admins' listing only; never an address).
    owner_name: str | None = None


class UsagePage(BaseModel):
    items: list[UsageRead]


class QuotaUpdate(BaseModel):
    """``quota_bytes``: the user's own quota; null: back to the instance default."""

    model_config = ConfigDict(extra="forbid")

    quota_bytes: int | None = Field(ge=0, le=2**62)


class VideosDeleted(BaseModel):
    deleted: int
