"""Once-only background work in a service that runs as several processes.

``videoforge gallery --workers N`` runs N uvicorn processes, and each runs the app's
lifespan. Loops that must run once per service instance (the gallery's event consumer
and view flusher) go through :func:`run_as_leader`: the process holding an exclusive
``flock`` on the instance's lock file runs them, the others wait for it. The kernel
drops the lock when its holder dies, so when uvicorn replaces a crashed process, one
of the live ones takes over within a poll interval. Without a lock file (one process)
the work simply runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

log = structlog.get_logger("videoforge.leader")

#: Set by the parent of a multi-process service: the lock file its processes share.
LEADER_LOCK_ENV = "VIDEOFORGE_LEADER_LOCK"
POLL_SECONDS = 2.0


async def run_as_leader(
    lock_path: Path | None,
    stop: asyncio.Event,
    work: Callable[[asyncio.Event], Awaitable[None]],
) -> None:
    """Run ``work(stop)`` in the one process that holds ``lock_path``, until ``stop``."""
    if lock_path is None:
        await work(stop)
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while not stop.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)
                continue
            log.info("background_leader", pid=os.getpid())
            await work(stop)
            return
    finally:
        os.close(fd)  # releases the lock, if held


def leader_lock_from_env() -> Path | None:
    value = os.environ.get(LEADER_LOCK_ENV)
    return Path(value) if value else None
