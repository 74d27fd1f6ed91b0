"""The Gallery service's FastAPI app.

``create_app(settings)`` builds its own backends in the lifespan (checks migrations,
runs the events consumer, view flusher and lifecycle events delivery, flushes buffered
views on shutdown).
``create_app(settings, infra)`` uses the given backends as they are and runs no
background loops — for tests and for the all-in-one server, which runs them itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from videoforge.gallery import api, deletions, stream_api, upload_api
from videoforge.gallery.captions import api as captions_api
from videoforge.gallery.comments import api as comments_api
from videoforge.gallery.events import run_event_consumer
from videoforge.gallery.lifecycle import metrics as lifecycle_metrics
from videoforge.gallery.lifecycle.delivery import run_lifecycle_delivery
from videoforge.gallery.listing_cache import ListingCache
from videoforge.gallery.moderation import api as moderation_api
from videoforge.gallery.playlists import api as playlists_api
from videoforge.gallery.ratings import api as ratings_api
from videoforge.gallery.schemas import HealthCheck
from videoforge.gallery.thumbnails import api as thumbnails_api
from videoforge.gallery.usage import api as usage_api
from videoforge.gallery.views import flush_views, run_view_flusher
from videoforge.gallery.webhooks import api as webhooks_api
from videoforge.infra import metrics
from videoforge.infra.errors import error_response
from videoforge.infra.http import install_common, register_app_collector
from videoforge.infra.leader import leader_lock_from_env, run_as_leader
from videoforge.infra.runtime import Infra, build_infra
from videoforge.infra.storage.base import StorageError
from videoforge.infra.storage.http.routes import router as storage_router
from videoforge.migrations import check_migrated
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gallery")

BACKGROUND_STOP_TIMEOUT = 15.0


def _lifespan(
    settings: Settings, given: Infra | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given is not None:
            app.state.infra = given
            stop = asyncio.Event()
            listener = _listing_cache(app, given, stop)
            try:
                yield
            finally:
                stop.set()
                if listener is not None:
                    await listener
            return
        infra = await build_infra(settings)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            await check_migrated(infra.engine)
            app.state.infra = infra
            listener = _listing_cache(app, infra, stop)  # in every process
            if listener is not None:
                tasks.append(listener)

            async def background(stop: asyncio.Event) -> None:
                await asyncio.gather(
                    run_event_consumer(infra, stop),
                    run_view_flusher(infra, stop),
                    run_lifecycle_delivery(infra, stop),
                )

            # Once per service instance, however many processes serve it.
            tasks.append(
                asyncio.create_task(
                    run_as_leader(leader_lock_from_env(), stop, background),
                    name="gallery-background",
                )
            )
            yield
        finally:
            stop.set()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=BACKGROUND_STOP_TIMEOUT)
                for task in pending:
                    task.cancel()
            # The flusher flushes when it stops; this catches a flusher that was cancelled.
            try:
                await flush_views(infra)
            except Exception:
                log.exception("views_shutdown_flush_failed")
            await infra.aclose()

    return lifespan


def _listing_cache(app: FastAPI, infra: Infra, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """The process's anonymous listing cache and its LISTEN task (PostgreSQL only)."""
    entries = infra.settings.listing_cache_entries
    if infra.engine.dialect.name != "postgresql" or entries == 0:
        return None
    cache = ListingCache(entries)
    cache.watch_local_writes(infra.engine)
    app.state.listing_cache = cache
    return asyncio.create_task(cache.listen(infra.engine, stop), name="listing-cache")


def create_app(settings: Settings, infra: Infra | None = None) -> FastAPI:
    """The Gallery app (see the module docstring for the two ways to run it)."""
    app = FastAPI(
        title="VideoForge Gallery",
        version="1.0.0",
        description=(
            "Listing, search, metadata, uploads, playback URLs and views. Errors are "
            '`{"error": {"code", "message"}}` with stable codes.'
        ),
        lifespan=_lifespan(settings, infra),
        # Under the gallery's own prefix, so that the embedded server and the gateway's
        # proxy (which route by prefix) reach it as they reach every gallery path.
        openapi_url="/api/gallery/openapi.json",
        docs_url="/api/gallery/docs",
        redoc_url=None,
    )
    if infra is not None:
        app.state.infra = infra
    install_common(app, service="gallery", settings=settings)

    async def _pending_deletions() -> None:
        metrics.PENDING_DELETIONS.set(await deletions.pending_count(app.state.infra.sessions))

    register_app_collector(app, "pending_deletions", _pending_deletions)

    async def _lifecycle() -> None:
        await lifecycle_metrics.collect(app.state.infra.sessions)

    register_app_collector(app, "lifecycle_events", _lifecycle)

    @app.exception_handler(StorageError)
    async def _storage_error(_: Request, exc: StorageError) -> JSONResponse:
        log.warning("storage_error", error=str(exc))
        return error_response(
            "storage_unavailable",
            "The object store is unavailable; try again.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    app.include_router(api.router)
    app.include_router(stream_api.router)
    app.include_router(upload_api.router)
    app.include_router(usage_api.router)
    app.include_router(comments_api.router)
    app.include_router(captions_api.router)
    app.include_router(thumbnails_api.router)
    app.include_router(ratings_api.router)
    app.include_router(playlists_api.router)
    app.include_router(moderation_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(webhooks_api.alias_router)
    app.include_router(storage_router)

    @app.get("/health", response_model=HealthCheck, tags=["health"])
    async def health(request: Request) -> JSONResponse:
        """Liveness and readiness: the database answers `SELECT 1`, the cache answers
        `PING` and the object store is reachable; 503 with the failing check otherwise."""
        current: Infra = request.app.state.infra
        checks: dict[str, str] = {}
        try:
            async with current.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await current.cache.ping()
            checks["cache"] = "ok"
        except Exception as exc:
            checks["cache"] = f"error: {type(exc).__name__}"
        try:
            await current.storage.check()
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = f"error: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            HealthCheck(status="ok" if ready else "unavailable", checks=checks).model_dump(),
            status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    return app
