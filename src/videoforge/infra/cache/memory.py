"""The embedded cache: a dict in this process, with expiry.

Each operation runs to completion without awaiting, so it is atomic with respect to
other asyncio tasks; a lock also makes it safe from worker threads
(``asyncio.to_thread``). It is per process: in embedded mode the web app owns it;
child workers do not share it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from videoforge.infra.cache.base import RateLimitResult


@dataclass
class _Entry:
    value: str
    expires_at: float | None  # time.monotonic() deadline; None = never


class MemoryCache:
    """In-process :class:`~videoforge.infra.cache.base.Cache` (monotonic-clock expiry)."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._data: dict[str, _Entry] = {}
        self._hashes: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        # A sweep of expired keys runs when the store grows past this, so rate-limit
        # keys for one-off clients cannot accumulate forever.
        self._max_keys = max_keys

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
            del self._data[key]
            return None
        return entry

    def _store(self, key: str, value: str, ttl: float | None, now: float) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive")
        if len(self._data) >= self._max_keys and key not in self._data:
            self._sweep(now)
        self._data[key] = _Entry(value, None if ttl is None else now + ttl)

    def _sweep(self, now: float) -> None:
        expired = [
            k for k, e in self._data.items() if e.expires_at is not None and e.expires_at <= now
        ]
        for k in expired:
            del self._data[k]

    async def get(self, key: str) -> str | None:
        """The value, or None when missing or expired."""
        with self._lock:
            entry = self._live(key, time.monotonic())
            return None if entry is None else entry.value

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        """Set ``key``, expiring after ``ttl`` seconds (never when None)."""
        with self._lock:
            self._store(key, value, ttl, time.monotonic())

    async def set_if_absent(self, key: str, value: str, *, ttl: float) -> bool:
        """Set only when missing; True when this call set it."""
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is not None:
                return False
            self._store(key, value, ttl, now)
            return True

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a plain key or a hash)."""
        with self._lock:
            self._data.pop(key, None)
            self._hashes.pop(key, None)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount``; a new key starts at 0 and gets ``ttl`` (an existing one keeps its
        expiry, as with Redis ``INCRBY`` + ``EXPIRE NX``)."""
        with self._lock:
            return self._incr(key, amount, ttl, time.monotonic())[0]

    def _incr(self, key: str, amount: int, ttl: float | None, now: float) -> tuple[int, _Entry]:
        entry = self._live(key, now)
        if entry is None:
            self._store(key, str(amount), ttl, now)
            return amount, self._data[key]
        try:
            value = int(entry.value) + amount
        except ValueError:
            raise ValueError(f"value of {key!r} is not an integer") from None
        entry.value = str(value)
        if entry.expires_at is None and ttl is not None:
            entry.expires_at = now + ttl
        return value, entry

    async def hit(self, key: str, *, limit: int, window: int) -> RateLimitResult:
        """Count one hit in a fixed window that starts at the key's first hit."""
        if limit < 0 or window <= 0:
            raise ValueError("limit must be >= 0 and window > 0")
        with self._lock:
            now = time.monotonic()
            count, entry = self._incr(key, 1, window, now)
            ttl = window if entry.expires_at is None else entry.expires_at - now
        return _rate_result(count, limit, ttl)

    async def hincr(self, name: str, field: str, amount: int = 1) -> None:
        """Add ``amount`` to ``field`` of hash ``name``."""
        with self._lock:
            fields = self._hashes.setdefault(name, {})
            fields[field] = fields.get(field, 0) + amount

    async def hdrain(self, name: str) -> dict[str, int]:
        """Take every field of hash ``name`` and clear it, atomically."""
        with self._lock:
            return self._hashes.pop(name, {})

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
            self._hashes.clear()


def _rate_result(count: int, limit: int, ttl_seconds: float) -> RateLimitResult:
    """Shared by both caches: allowed while the window's count is within the limit."""
    if count <= limit:
        return RateLimitResult(allowed=True, remaining=limit - count, retry_after=0)
    return RateLimitResult(allowed=False, remaining=0, retry_after=max(1, math.ceil(ttl_seconds)))


__all__ = ["MemoryCache"]
