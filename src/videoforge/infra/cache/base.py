"""A small cache interface: key/value with expiry, counters, fixed-window rate limits
and hash counters that can be drained atomically (the view buffer of earlier versions,
which the gallery still drains).

Implementations: in-process (:mod:`.memory`) and Redis (:mod:`.redis`).

An implementation that cannot reach its server raises
:class:`~videoforge.infra.errors.CacheUnavailable` (a 503), never its client's own errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    remaining: int
    retry_after: int  # seconds until the window resets (0 when allowed)


@runtime_checkable
class Cache(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: str, *, ttl: float) -> bool:
        """Set only when missing; True when this call set it (dedup windows, locks)."""

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add; the TTL is set when the key is created."""

    async def hit(self, key: str, *, limit: int, window: int) -> RateLimitResult:
        """Count one hit in a fixed window of ``window`` seconds, allowing ``limit``."""

    async def hincr(self, name: str, field: str, amount: int = 1) -> None:
        """Add to a counter inside hash ``name``."""

    async def hdrain(self, name: str) -> dict[str, int]:
        """Atomically read and clear hash ``name`` (nothing added meanwhile is lost)."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
