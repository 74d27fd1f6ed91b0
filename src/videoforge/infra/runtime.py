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
    from videoforge.infra.auth import TokenIssuer, TokenVerifier
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
    # Only where tokens are minted here (local accounts: the gateway, embedded, tests).
    issuer: TokenIssuer | None = None
    extras: dict[str, object] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.cache.close()
        closer = getattr(self.verifier, "aclose", None)
        if closer is not None:
            await closer()
        await self.engine.dispose()


async def build_infra(settings: Settings, *, with_issuer: bool = False) -> Infra:
    """Build every backend the settings choose (embedded stand-ins where unset)."""
    from videoforge.infra.auth import TokenIssuer, build_verifier
    from videoforge.infra.cache import build_cache
    from videoforge.infra.queue import build_queues
    from videoforge.infra.storage import build_storage

    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    sessions = session_factory(engine)
    issuer = TokenIssuer.from_settings(settings) if with_issuer else None
    return Infra(
        settings=settings,
        engine=engine,
        sessions=sessions,
        storage=build_storage(settings),
        queues=build_queues(settings, engine),
        cache=build_cache(settings),
        verifier=build_verifier(settings, issuer=issuer),
        issuer=issuer,
    )
