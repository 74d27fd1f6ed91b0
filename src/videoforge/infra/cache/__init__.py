"""The cache: interface (:mod:`.base`), in-process (:mod:`.memory`) and Redis
(:mod:`.redis`). :func:`build_cache` picks Redis when ``REDIS_URL`` is set."""

from __future__ import annotations

from videoforge.infra.cache.base import Cache, RateLimitResult
from videoforge.infra.cache.memory import MemoryCache
from videoforge.settings import CacheBackend, Settings


def build_cache(settings: Settings) -> Cache:
    """The configured cache; connects to nothing until first used."""
    if settings.cache_backend is CacheBackend.REDIS:
        from videoforge.infra.cache.redis import RedisCache

        assert settings.redis_url
        return RedisCache(settings.redis_url, prefix=settings.redis_key_prefix)
    return MemoryCache()


__all__ = ["Cache", "MemoryCache", "RateLimitResult", "build_cache"]
