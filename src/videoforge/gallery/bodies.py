"""Reading an uploaded request body with a size cap (captions, thumbnail images)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from videoforge.infra.errors import AppError


async def read_capped(request: Request, limit: int, too_large: Callable[[], AppError]) -> bytes:
    """The request body, refused (``too_large()``) as soon as it is known to exceed
    ``limit``: from its Content-Length, or while it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large()
    return bytes(body)
