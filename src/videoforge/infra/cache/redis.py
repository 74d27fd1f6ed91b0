"""The distributed cache: Redis (ElastiCache in AWS) through ``redis.asyncio``.

Multi-step operations are atomic on the server: counters with expiry and rate-limit
hits run as one ``MULTI``/``EXEC`` transaction (``INCRBY`` + ``PEXPIRE NX``), and
draining a hash is ``HGETALL`` + ``DEL`` in one transaction, so an increment made by
another process lands either in this drain or in the next one, never nowhere.
"""

from __future__ import annotations

import math
from typing import Any

import redis.asyncio as aioredis

from videoforge.infra.cache.base import RateLimitResult
from videoforge.infra.cache.memory import _rate_result


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError("ttl must be positive")
    return max(1, math.ceil(seconds * 1000))


class RedisCache:
    """:class:`~videoforge.infra.cache.base.Cache` on Redis. ``prefix`` namespaces every
    key (several deployments, or tests, on one server). Connects lazily."""

    def __init__(self, url: str, *, prefix: str = "") -> None:
        self._redis: aioredis.Redis[str] = aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
        )
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def get(self, key: str) -> str | None:
        """The value, or None when missing or expired."""
        value: Any = await self._redis.get(self._key(key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        """Set ``key``, expiring after ``ttl`` seconds (never when None)."""
        await self._redis.set(self._key(key), value, px=None if ttl is None else _ms(ttl))

    async def set_if_absent(self, key: str, value: str, *, ttl: float) -> bool:
        """``SET NX PX``: True when this call set it."""
        return bool(await self._redis.set(self._key(key), value, px=_ms(ttl), nx=True))

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a plain key or a hash)."""
        await self._redis.delete(self._key(key))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """``INCRBY``; the TTL is set only when the key has none (``PEXPIRE NX``)."""
        name = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            if ttl is not None:
                pipe.pexpire(name, _ms(ttl), nx=True)
            results = await pipe.execute()
        return int(results[0])

    async def hit(self, key: str, *, limit: int, window: int) -> RateLimitResult:
        """Count one hit in a fixed window that starts at the key's first hit."""
        if limit < 0 or window <= 0:
            raise ValueError("limit must be >= 0 and window > 0")
        name = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window, nx=True)
            pipe.pttl(name)
            count, _, pttl = await pipe.execute()
        ttl_seconds = window if int(pttl) < 0 else int(pttl) / 1000
        return _rate_result(int(count), limit, ttl_seconds)

    async def hincr(self, name: str, field: str, amount: int = 1) -> None:
        """``HINCRBY``."""
        await self._redis.hincrby(self._key(name), field, amount)

    async def hdrain(self, name: str) -> dict[str, int]:
        """``HGETALL`` + ``DEL`` in one transaction."""
        key = self._key(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.delete(key)
            fields, _ = await pipe.execute()
        return {str(f): int(v) for f, v in dict(fields).items()}

    async def ping(self) -> None:
        """Raise when Redis cannot be reached (readiness checks)."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        # types-redis predates redis 5's aclose(); close() is deprecated at runtime.
        await self._redis.aclose()  # type: ignore[attr-defined]


__all__ = ["RedisCache"]
