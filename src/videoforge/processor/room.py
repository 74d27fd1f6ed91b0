"""Room on the work disk: the worker takes a job only when it can finish it.

Before it downloads, a run asks :meth:`WorkDisk.check` for room: source size x
``WORK_DISK_FACTOR`` plus ``WORK_DISK_FLOOR`` free (see :func:`~.policy.bytes_needed`),
minus what the other running jobs were granted. A job this worker had no room for is
remembered, so it is taken again only with meaningfully more room than that time. After
a failure of the machine (not a mere decline) the worker pauses: it reports itself
unhealthy (metric + log) and takes no job until :meth:`WorkDisk.wait_for_room` finds
room again (or, for a decline-triggered pause, a cooldown passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from videoforge.processor.metrics import WORKER_DISK_FREE, WORKER_DISK_OK
from videoforge.processor.policy import bytes_needed, may_take_work
from videoforge.processor.resources import LocalResourceError, free_bytes

log = structlog.get_logger("videoforge.processor.room")

#: While it has no room, how often the worker looks at its free space again.
DISK_RECHECK_SECONDS: Final = 5.0
#: After handing a job back for lack of room, the longest the worker waits for room for
#: that job before taking smaller ones again (others had their chance at that job).
DISK_COOLDOWN_SECONDS: Final = 30.0
#: Jobs whose lack of room this worker remembers (so it does not retry one without more
#: room than last time).
NO_ROOM_MEMORY: Final = 256


@dataclass
class NoRoom:
    """A job this worker had no room for: how much was available then, how often."""

    available: int
    times: int


@dataclass
class _Pause:
    """This worker stopped taking jobs for lack of room."""

    reason: str
    wanted: int  # free bytes it waits for (or the cooldown)
    since: float


@dataclass(frozen=True)
class Grant:
    """What a room check found: bytes needed, bytes available, bytes reserved."""

    needed: int
    available: int
    reserved: int


class WorkDisk:
    """The work dir's free space as this worker sees it (one per worker)."""

    def __init__(
        self,
        path: Path,
        *,
        factor: float,
        floor: int,
        recheck: float = DISK_RECHECK_SECONDS,
        cooldown: float = DISK_COOLDOWN_SECONDS,
    ) -> None:
        self.path = path
        self.factor = factor
        self.floor = floor
        self.recheck = recheck
        self.cooldown = cooldown
        self._pause: _Pause | None = None
        self._no_room: dict[uuid.UUID, NoRoom] = {}

    @property
    def paused(self) -> bool:
        return self._pause is not None

    async def free(self) -> int:
        """Free bytes in the work dir (0 when it cannot even be looked at)."""
        try:
            free = await asyncio.to_thread(free_bytes, self.path)
        except OSError as exc:
            log.error("work_dir_unusable", path=str(self.path), error=str(exc))
            free = 0
        WORKER_DISK_FREE.set(free)
        return free

    async def check(
        self, job_id: uuid.UUID, source_size: int | None, *, others_reserved: int
    ) -> Grant:
        """Room for ``job_id``, or :class:`LocalResourceError` ("declined").

        Needed: :func:`~.policy.bytes_needed` of the source size, and more than was
        available the last time this worker had no room for this job. Available: free
        space minus ``others_reserved`` (the other running jobs' outputs may still grow
        into it). The :class:`LocalResourceError` carries both figures.
        """
        needed = bytes_needed(source_size, factor=self.factor, floor=self.floor)
        seen = self._no_room.get(job_id)
        if seen is not None:
            # Meaningfully more than last time (free space drifts by a few bytes).
            more = max(self.floor, seen.available // 10, 1)
            needed = max(needed, seen.available + more)
        available = await self.free() - others_reserved
        if available < needed:
            raise LocalResourceError(
                "declined",
                f"needs {needed} bytes free in the work dir, {available} available",
                needed=needed,
                free=available,
            )
        log.info("room_checked", needed=needed, available=available, source_size=source_size)
        return Grant(needed=needed, available=available, reserved=max(0, needed - self.floor))

    def remember_no_room(self, job_id: uuid.UUID, available: int) -> int:
        """Note that ``job_id`` did not fit with ``available`` bytes; returns how many
        times in a row this worker had no room for it."""
        seen = self._no_room.pop(job_id, None)
        times = (seen.times if seen is not None else 0) + 1
        self._no_room[job_id] = NoRoom(available=available, times=times)
        while len(self._no_room) > NO_ROOM_MEMORY:
            self._no_room.pop(next(iter(self._no_room)))
        return times

    def stop_taking(self, reason: str, *, wanted: int) -> None:
        """Report the worker unhealthy and stop receiving until :meth:`wait_for_room`
        finds room again."""
        if self._pause is None:
            log.error("worker_unhealthy", reason=reason, wanted_free=wanted)
        self._pause = _Pause(reason=reason, wanted=wanted, since=time.monotonic())
        WORKER_DISK_OK.set(0)

    async def wait_for_room(self, stop: asyncio.Event) -> None:
        """Before every receive: return when the worker may take a job, re-checking the
        free space every ``recheck`` seconds while it may not (or until ``stop``)."""
        while not stop.is_set():
            free = await self.free()
            pause = self._pause
            if pause is None:
                if free >= self.floor:
                    WORKER_DISK_OK.set(1)
                    return
                self.stop_taking("below_floor", wanted=self.floor)
            elif may_take_work(
                free,
                floor=self.floor,
                wanted=pause.wanted,
                paused_for=time.monotonic() - pause.since,
                cooldown=self.cooldown,
            ):
                self._pause = None
                WORKER_DISK_OK.set(1)
                log.info("worker_healthy", free=free, was=pause.reason)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.recheck)


__all__ = ["DISK_COOLDOWN_SECONDS", "DISK_RECHECK_SECONDS", "Grant", "NoRoom", "WorkDisk"]
