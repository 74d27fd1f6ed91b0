"""The distributed cache: Redis (ElastiCache in AWS) through ``redis.asyncio``.

Multi-step operations are atomic on the server: counters with expiry and rate-limit
hits run as one ``MULTI``/``EXEC`` transaction (``INCRBY`` + ``PEXPIRE NX``), and
draining a hash is ``HGETALL`` + ``DEL`` in one transaction, so an increment made by
another process lands either in this drain or in the next one, never nowhere.

Outages: a command that fails on a broken connection (a pooled connection that Redis
dropped when it restarted, a reset) is retried on a fresh connection with a short
exponential backoff, so a restart costs at most the requests made while Redis is
really down. Once a command has failed that way, later ones retry without the backoff
until one succeeds: each still tries Redis (the first after the restart gets through),
but a request does not wait 0.7 s to hear what the last one found out. What still
fails, and every timeout, is raised as
:class:`~videoforge.infra.errors.CacheUnavailable` (503 ``unavailable`` with
``Retry-After``), never as a raw redis error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry  # the asyncio one: redis.retry.Retry would not await
from redis.backoff import AbstractBackoff, ExponentialBackoff

from videoforge.infra.cache.base import RateLimitResult
from videoforge.infra.cache.memory import _rate_result
from videoforge.infra.errors import CacheUnavailable

#: Seconds to open a connection / to wait for a reply. Redis answers in well under a
#: millisecond; waiting longer only holds requests (and their database connections).
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 2.0
#: Retries of a command that failed on a broken connection: 0.1, 0.2, 0.4 s apart.
RETRIES = 3
#: A pooled connection idle this long is PINGed before use (and replaced if dead).
HEALTH_CHECK_INTERVAL_SECONDS = 10

# ReadOnlyError: a failover in progress (the old primary became a replica).
_OUTAGES = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError)


def is_cache_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means Redis cannot be reached right now."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if isinstance(current, (CacheUnavailable, *_OUTAGES)):
            return True
        current = current.__cause__ or current.__context__
    return False


class _OutageBackoff(AbstractBackoff):
    """Exponential backoff while Redis is believed up; none once a command has failed
    for good, until one succeeds again. Shared by every pooled connection (redis-py
    deep-copies the retry policy into each one)."""

    def __init__(self) -> None:
        self.down = False
        self._backoff = ExponentialBackoff(cap=0.4, base=0.05)

    def __deepcopy__(self, memo: dict[int, object]) -> _OutageBackoff:
        return self

    def compute(self, failures: int) -> float:
        return 0.0 if self.down else float(self._backoff.compute(failures))


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError("ttl must be positive")
    return max(1, math.ceil(seconds * 1000))


class RedisCache:
    """:class:`~videoforge.infra.cache.base.Cache` on Redis. ``prefix`` namespaces every
    key (several deployments, or tests, on one server). Connects lazily."""

    def __init__(self, url: str, *, prefix: str = "") -> None:
        self._backoff = _OutageBackoff()
        self._redis: aioredis.Redis[str] = aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
            # Only connection errors are retried: a timeout may mean the command ran
            # (INCR twice), and retrying a hung server only holds the request longer.
            retry=Retry(self._backoff, RETRIES, supported_errors=(redis_errors.ConnectionError,)),
            retry_on_error=[redis_errors.ConnectionError],
        )
        self._prefix = prefix

    @contextlib.contextmanager
    def _unavailable_on_outage(self) -> Iterator[None]:
        try:
            yield
        except _OUTAGES as exc:
            self._backoff.down = True
            raise CacheUnavailable() from exc
        self._backoff.down = False

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def get(self, key: str) -> str | None:
        """The value, or None when missing or expired."""
        with self._unavailable_on_outage():
            value: Any = await self._redis.get(self._key(key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        """Set ``key``, expiring after ``ttl`` seconds (never when None)."""
        px = None if ttl is None else _ms(ttl)
        with self._unavailable_on_outage():
            await self._redis.set(self._key(key), value, px=px)

    async def set_if_absent(self, key: str, value: str, *, ttl: float) -> bool:
        """``SET NX PX``: True when this call set it."""
        px = _ms(ttl)
        with self._unavailable_on_outage():
            return bool(await self._redis.set(self._key(key), value, px=px, nx=True))

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a plain key or a hash)."""
        with self._unavailable_on_outage():
            await self._redis.delete(self._key(key))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """``INCRBY``; the TTL is set only when the key has none (``PEXPIRE NX``)."""
        name = self._key(key)
        with self._unavailable_on_outage():
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
        with self._unavailable_on_outage():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window, nx=True)
                pipe.pttl(name)
                count, _, pttl = await pipe.execute()
        ttl_seconds = window if int(pttl) < 0 else int(pttl) / 1000
        return _rate_result(int(count), limit, ttl_seconds)

    async def hincr(self, name: str, field: str, amount: int = 1) -> None:
        """``HINCRBY``."""
        with self._unavailable_on_outage():
            await self._redis.hincrby(self._key(name), field, amount)

    async def hdrain(self, name: str) -> dict[str, int]:
        """``HGETALL`` + ``DEL`` in one transaction."""
        key = self._key(name)
        with self._unavailable_on_outage():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(key)
                pipe.delete(key)
                fields, _ = await pipe.execute()
        return {str(f): int(v) for f, v in dict(fields).items()}

    async def ping(self) -> None:
        """Raise :class:`CacheUnavailable` when Redis cannot be reached (readiness)."""
        with self._unavailable_on_outage():
            await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        # types-redis predates redis 5's aclose(); close() is deprecated at runtime.
        await self._redis.aclose()  # type: ignore[attr-defined]


__all__ = ["RedisCache", "is_cache_outage"]
