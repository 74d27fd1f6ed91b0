"""The one progress throttle between ffmpeg's reports and the job row.

The pipeline reports percentages as often as ffmpeg and the segment watcher produce
them (several a second); every value that passes here is written to the job row and
published as an event. What passes: whole percentages that never go down, at most one
per ``interval`` seconds, the newest one. A value held back by the interval is not lost:
it goes out with the next report after the interval (the segment watcher reports every
second, so a held value waits at most about that long), and 100 always goes out.
Liveness is the heartbeat's job (``heartbeat_at``), not progress's: an unchanged value is
never written again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

ProgressCallback = Callable[[int], Awaitable[None]]

#: Minimum spacing of progress writes (seconds).
PROGRESS_INTERVAL_SECONDS: Final = 1.0


class Progress:
    """Feeds ``callback`` with throttled, increasing whole percentages (see module)."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._interval = interval
        self._clock = clock
        self._sent = -1
        self._sent_at = -float("inf")
        self._newest = -1

    @property
    def sent(self) -> int:
        """The last value that went out (-1 before the first)."""
        return self._sent

    async def report(self, percent: float) -> None:
        self._newest = max(self._newest, 0, min(100, int(percent)))
        if self._callback is None or self._newest <= self._sent:
            return
        now = self._clock()
        if self._newest < 100 and now - self._sent_at < self._interval:
            return
        self._sent, self._sent_at = self._newest, now
        await self._callback(self._sent)


__all__ = ["PROGRESS_INTERVAL_SECONDS", "Progress", "ProgressCallback"]
