"""The shared infrastructure a service runs on, built once at start-up and passed in.

``Infra`` is put on ``app.state.infra`` by each service's lifespan (or by a test that
built it). Nothing here connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from videoforge.infra.db import create_engine, session_factory
from videoforge.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

    from videoforge.infra.auth.verifier import TokenVerifier
    from videoforge.infra.cache.base import Cache
    from videoforge.infra.queue.base import Queues
    from videoforge.infra.storage.base import Storage


@dataclass
class Infra:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    queues: Queues
    cache: Cache
    verifier: TokenVerifier
    #: The local ES256 key, only where tokens are minted in this process (local accounts:
    #: the gateway, embedded, tests); the gateway's issuer signs with it and the verifier
    #: trusts it in-process.
    signing_key: EllipticCurvePrivateKey | None = None
    extras: dict[str, object] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.cache.close()
        closer = getattr(self.verifier, "aclose", None)
        if closer is not None:
            await closer()
        await self.engine.dispose()


async def build_infra(settings: Settings, *, with_signing_key: bool = False) -> Infra:
    """Build every backend the settings choose (embedded stand-ins where unset), with the
    local signing key read or made when this process will mint tokens."""
    from videoforge.infra.auth.keys import local_signing_key
    from videoforge.infra.auth.verifier import build_verifier
    from videoforge.infra.cache import build_cache
    from videoforge.infra.queue import build_queues
    from videoforge.infra.storage import build_storage

    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    sessions = session_factory(engine)
    signing_key = local_signing_key(settings) if with_signing_key else None
    return Infra(
        settings=settings,
        engine=engine,
        sessions=sessions,
        storage=build_storage(settings),
        queues=build_queues(settings, engine),
        cache=build_cache(settings),
        verifier=build_verifier(settings, signing_key=signing_key),
        signing_key=signing_key,
    )
