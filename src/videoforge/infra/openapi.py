"""What every service's OpenAPI document says about errors.

Every refusal is ``{"error": {"code", "message"}}`` (``infra.errors``); routers list the
statuses they can answer with :func:`error_responses`, so a client generated from the
document (or schemathesis, in the tests) knows a 401 or 429 can come back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: What any route may answer besides its own success: bad input (400/422), missing or
#: refused credentials (401/403), unknown ids (404), conflicts (409), rate limits (429)
#: and outages of a backend (503).
COMMON_ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429, 503)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="A sentence for humans.")
    details: object | None = None


class ErrorBody(BaseModel):
    """The one error format of every VideoForge service."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a router or route: each status documented as an :class:`ErrorBody`."""
    return {status: {"model": ErrorBody} for status in statuses or COMMON_ERROR_STATUSES}
