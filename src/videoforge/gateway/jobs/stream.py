"""``GET /api/jobs/{id}/events``: a job's progress as Server-Sent Events.

The stream re-reads the job row every ``events_poll_interval`` seconds (in a short
transaction of its own) and sends an event whenever status, progress or ``event_seq``
changed; a comment line keeps idle connections open; the stream ends after the event
of a final state (``event: end``). Every gateway instance can serve any stream: the
database is the source of truth, no in-process fan-out is needed.

``EventSource`` cannot set headers, so the access token may come as ``?access_token=``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from videoforge.gateway.deps import GatewayState, gateway_state
from videoforge.infra.auth.principal import Principal, bearer_token
from videoforge.infra.db import session_scope
from videoforge.infra.errors import Unauthorized
from videoforge.infra.openapi import error_responses
from videoforge.jobs import JobRead, get_job
from videoforge.jobs.service import job_read

log = structlog.get_logger("videoforge.gateway.stream")
router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=error_responses())

#: How long EventSource waits before reconnecting after the stream drops (ms).
RECONNECT_MS = 3000


def format_event(event: str, data: str, *, event_id: str | None = None) -> str:
    """One SSE frame (``data`` must be a single line, as JSON is)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


async def _principal(request: Request, gw: GatewayState, access_token: str | None) -> Principal:
    token = bearer_token(request) or access_token
    if not token:
        raise Unauthorized("Log in to do this.", code="auth_required")
    return await gw.infra.verifier.verify(token)


async def _snapshot(gw: GatewayState, job_id: uuid.UUID, *, full: bool) -> JobRead:
    async with session_scope(gw.infra.sessions) as session:
        job = await get_job(session, job_id)
        return await job_read(session, job, with_assets=full)


@router.get("/{job_id}/events")
async def job_events(
    job_id: uuid.UUID,
    request: Request,
    gw: GatewayState = Depends(gateway_state),
    access_token: Annotated[str | None, Query(max_length=16_384)] = None,
) -> StreamingResponse:
    """Live progress of one of your jobs as ``text/event-stream``.

    Events: ``status`` (the status changed), ``progress`` (progress or another field
    changed), both with the job as JSON; ``end`` after a final state, then the stream
    closes. Authenticate with the Authorization header or ``?access_token=``.
    """
    principal = await _principal(request, gw, access_token)
    owner = None if principal.is_admin else principal.user_id
    # 404 before the stream starts: afterwards no status code can be sent.
    async with session_scope(gw.infra.sessions) as session:
        await get_job(session, job_id, user_id=owner)

    options = gw.options

    async def stream() -> AsyncIterator[str]:
        started = last_beat = time.monotonic()
        last: tuple[str, int, int, int | None] | None = None
        yield f"retry: {RECONNECT_MS}\n\n"
        while True:
            try:
                job = await _snapshot(gw, job_id, full=False)
            except Exception:
                # A deleted job or a database hiccup: end; the client reconnects or reads.
                log.warning("job_events_read_failed", job_id=str(job_id), exc_info=True)
                yield format_event("error", json.dumps({"code": "stream_interrupted"}))
                return
            # A queued job moving up is news too (its ETA rides along on every event).
            state = (str(job.status), job.progress, job.event_seq, job.queue_position)
            final = job.status.is_final
            if state != last:
                kind = "status" if last is None or last[0] != state[0] else "progress"
                if final:
                    job = await _snapshot(gw, job_id, full=True)  # with its assets
                yield format_event(kind, job.model_dump_json(), event_id=str(job.event_seq))
                last = state
                last_beat = time.monotonic()
            if final:
                yield format_event("end", json.dumps({"status": str(job.status)}))
                return
            now = time.monotonic()
            if now - started >= options.events_max_duration:
                return  # EventSource reconnects; bounded streams free the server
            if now - last_beat >= options.events_heartbeat_interval:
                yield ": keepalive\n\n"
                last_beat = now
            await asyncio.sleep(options.events_poll_interval)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache, no-transform",
            # nginx and similar would otherwise buffer the stream.
            "X-Accel-Buffering": "no",
        },
    )
