"""What every HTTP service installs: the error format, request ids, an access log,
Prometheus metrics and ``/metrics``, baseline security headers and CORS; and how a
service is served (uvicorn, one process or several).

The middleware itself is in :mod:`videoforge.infra.middleware`. Order, outermost first::

    ForwardedHeadersMiddleware  the real client and scheme, from trusted proxies only
    RequestMiddleware           request id, access log + metrics, security headers
    CORSMiddleware              only when CORS_ORIGINS is set
    UnhandledErrorMiddleware    unexpected exceptions -> the JSON 500, inside the above
    (FastAPI: ExceptionMiddleware -> router)
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.middleware.cors import CORSMiddleware

from videoforge.infra import heap, metrics, tracing
from videoforge.infra.errors import NotFound, Unauthorized, install_error_handlers
from videoforge.infra.forwarded import ForwardedHeadersMiddleware
from videoforge.infra.middleware import (
    REQUEST_ID_HEADER,
    SECURITY_HEADERS,
    RequestMiddleware,
    UnhandledErrorMiddleware,
    get_request_id,
)
from videoforge.settings import Settings

__all__ = [
    "REQUEST_ID_HEADER",
    "SECURITY_HEADERS",
    "RequestMiddleware",
    "UnhandledErrorMiddleware",
    "get_request_id",
    "install_common",
    "register_app_collector",
    "run_app",
]


def install_common(
    app: FastAPI,
    *,
    service: str,
    settings: Settings,
    security_headers: Mapping[str, str] | None = None,
    frameable_prefixes: tuple[str, ...] = (),
    metrics_endpoint: bool = True,
) -> None:
    """Install the shared middleware, error handlers and ``/metrics`` on a service's app.

    ``security_headers`` replaces the baseline set (a response that sets a header itself
    always wins); ``frameable_prefixes`` are paths without ``X-Frame-Options`` (see
    :class:`~videoforge.infra.middleware.RequestMiddleware`). Call once, before the app
    serves its first request.
    """
    install_error_handlers(app)
    app.state.service_name = service
    tracing.instrument_app(app)

    # add_middleware puts each new one outside the previous: add innermost first.
    app.add_middleware(UnhandledErrorMiddleware, fastapi_app=app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER, "ETag", "Retry-After", "Location"],
            max_age=600,
        )
        app.state.cors_installed = True
    app.add_middleware(
        RequestMiddleware,
        service=service,
        headers=SECURITY_HEADERS if security_headers is None else security_headers,
        frameable_prefixes=frameable_prefixes,
    )
    # Outermost: every other layer (access log, rate limits, links) sees the real client.
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.forwarded_allow_ips)

    if metrics_endpoint:
        token = settings.metrics_token

        async def metrics_endpoint_handler(request: Request) -> Response:
            """Prometheus metrics of this process, in the text exposition format.

            This is the port clients use: answered only with ``METRICS_TOKEN`` as a
            bearer token (without one configured, not at all; ``METRICS_PORT`` serves
            them on a loopback listener instead).
            """
            if token is None:
                raise NotFound("Not Found")
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise Unauthorized("Metrics need the configured bearer token.")
            return Response(
                content=await metrics.render_latest(app_collectors(request.app)),
                media_type=metrics.CONTENT_TYPE_LATEST,
                headers={"Cache-Control": "no-store"},
            )

        app.add_api_route(
            "/metrics",
            metrics_endpoint_handler,
            methods=["GET"],
            include_in_schema=False,
            name="metrics",
        )


def register_app_collector(app: FastAPI, name: str, fn: metrics.CollectorFn) -> None:
    """Run ``fn`` on every scrape of *this app's* ``/metrics`` (e.g. jobs by state).

    Unlike :func:`videoforge.infra.metrics.register_collector` it lives and dies with the
    app, so an app built twice in one process (tests) never scrapes a closed backend.
    """
    collectors: dict[str, metrics.CollectorFn] | None = getattr(
        app.state, "metrics_collectors", None
    )
    if collectors is None:
        collectors = {}
        app.state.metrics_collectors = collectors
    collectors[name] = fn


def app_collectors(app: Any) -> dict[str, metrics.CollectorFn]:
    """The app's own collectors, plus queue depth when the app has its ``infra``."""
    collectors: dict[str, metrics.CollectorFn] = dict(
        getattr(app.state, "metrics_collectors", None) or {}
    )
    queues = getattr(getattr(app.state, "infra", None), "queues", None)
    if queues is not None and "queue_depth" not in collectors:
        collectors["queue_depth"] = metrics.queue_depth_collector(queues)
    return collectors


def run_app(factory: str, *, settings: Settings, service: str) -> None:
    """Serve the app made by ``factory`` (``module:function(settings)``) with uvicorn, in
    ``settings.web_workers`` processes, logging through :mod:`videoforge.infra.logging`.

    One process: the app is built here from ``settings``. Several: uvicorn starts each
    process on the import string of the module's ``from_env`` factory (which reads the
    same settings from the environment: the overrides given here are put there first),
    and their once-only loops share a leader lock (:mod:`videoforge.infra.leader`).
    uvicorn's own logging config and access log are turned off: the access line comes
    from :class:`~videoforge.infra.middleware.RequestMiddleware` (with request id, route
    and latency).
    """
    import importlib
    import tempfile

    import uvicorn

    from videoforge.infra.leader import LEADER_LOCK_ENV
    from videoforge.infra.logging import configure_logging

    configure_logging(settings, service=service)
    tracing.configure(service)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        # Forwarding headers are handled by ForwardedHeadersMiddleware (FORWARDED_ALLOW_IPS,
        # empty by default); uvicorn's own would trust 127.0.0.1 whatever is configured.
        "proxy_headers": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds) + 5,
    }
    module_name, _, function = factory.partition(":")
    workers = settings.web_workers
    if workers == 1:
        app = getattr(importlib.import_module(module_name), function)(settings)
        uvicorn.run(heap.settle_after_startup(app), **options)
        return
    os.environ.update({"HOST": settings.host, "PORT": str(settings.port)})
    with tempfile.NamedTemporaryFile(prefix=f"videoforge-{service}-", suffix=".lock") as lock:
        os.environ[LEADER_LOCK_ENV] = lock.name
        uvicorn.run(f"{module_name}:from_env", factory=True, workers=workers, **options)
