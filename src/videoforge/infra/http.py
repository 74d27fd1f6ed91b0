"""What every HTTP service installs: the error format, request ids, an access log,
Prometheus metrics and ``/metrics``, baseline security headers and CORS.

Everything here is pure ASGI middleware (never ``BaseHTTPMiddleware``): messages are
passed through one by one, so streamed responses (SSE, proxied uploads and downloads)
are never buffered.

Order, outermost first::

    RequestIdMiddleware        id in, id out, bound in structlog contextvars
    AccessLogMiddleware        one log line + metrics per request, latency to body end
    SecurityHeadersMiddleware  nosniff / Referrer-Policy / X-Frame-Options if absent
    CORSMiddleware             only when CORS_ORIGINS is set
    UnhandledErrorMiddleware   unexpected exceptions -> the JSON 500, inside the above
    (FastAPI: ExceptionMiddleware -> router)
"""

from __future__ import annotations

import hmac
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount

from videoforge.infra import metrics, tracing
from videoforge.infra.errors import NotFound, Unauthorized, error_body, install_error_handlers
from videoforge.infra.forwarded import ForwardedHeadersMiddleware
from videoforge.settings import Settings

__all__ = [
    "REQUEST_ID_HEADER",
    "SECURITY_HEADERS",
    "AccessLogMiddleware",
    "RequestIdMiddleware",
    "SecurityHeadersMiddleware",
    "UnhandledErrorMiddleware",
    "get_request_id",
    "install_common",
    "register_app_collector",
    "run_app",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
# A sane incoming id: what load balancers and tracing tools send (UUIDs, ALB's
# "Root=1-..." style, hex), bounded so a client cannot fill the logs with it.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}$")

#: Baseline headers added to every response that does not set them itself.
SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    # Signed stream and upload URLs carry their signature in the query string: never
    # let a page hand its URL to another origin.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # JSON and playlists are data, never documents: if one is ever opened as a page
    # (or sniffed as one), nothing in it runs, loads or frames.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
}

#: Paths whose access lines are logged at DEBUG: load-balancer probes and scrapes would
#: otherwise drown every other line.
QUIET_PATHS = frozenset({"/health", "/metrics"})

_request_id: ContextVar[str | None] = ContextVar("videoforge_request_id", default=None)

access_log = structlog.get_logger("videoforge.access")


def get_request_id() -> str | None:
    """The id of the request being served in this context (``None`` outside a request).

    The gateway forwards it to the gallery so one id follows a request across services.
    """
    return _request_id.get()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
                return None
    return None


def _new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Accepts a sane incoming ``X-Request-ID`` (or makes one), binds it, echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        encoded = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", encoded))
                message["headers"] = headers
            await send(message)

        token = _request_id.set(request_id)
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/gallery/videos/{video_id}``), never the raw path.

    Unmatched requests share one label so that scanners cannot explode the metric's
    cardinality.
    """
    mount = scope.get("root_path", "") or ""
    app_root = scope.get("app_root_path", "") or ""
    # Inside a mount, root_path has grown by the mount's path.
    prefix = mount[len(app_root) :] if mount.startswith(app_root) else ""
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return f"{prefix}{template}"
    if prefix:
        # A mounted app that is not a router (static files, the web client): one label
        # for everything under it.
        return f"{prefix}/{{path}}"
    return "<unmatched>"


class AccessLogMiddleware:
    """One log line and the request metrics per request, measured to the body's end."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        start = time.perf_counter()
        status = 500
        response_bytes = 0

        recorded = False

        def record() -> None:
            # Recorded once: just before the response's last byte is handed to the server,
            # so a client that has read the whole response also sees it in /metrics (the
            # app may run on after that, e.g. FileResponse waiting for a disconnect); or at
            # the end for a request whose response never completed.
            nonlocal recorded
            if recorded:
                return
            recorded = True
            in_progress.dec()
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            labels = {
                "service": self.service,
                "method": method,
                "route": route,
                "status": str(status),
            }
            metrics.HTTP_REQUESTS.labels(**labels).inc()
            metrics.HTTP_REQUEST_DURATION.labels(**labels).observe(elapsed)
            path: str = scope.get("path", "")
            emit = access_log.debug if path in QUIET_PATHS and status < 400 else access_log.info
            client = scope.get("client")
            emit(
                "http_request",
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                bytes=response_bytes,
                client=client[0] if client else None,
            )

        async def send_and_record(message: Message) -> None:
            nonlocal status, response_bytes
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                response_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record()
            await send(message)

        in_progress = metrics.HTTP_REQUESTS_IN_PROGRESS.labels(service=self.service, method=method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            record()


class SecurityHeadersMiddleware:
    """Adds each baseline header the response does not already set (apps may override).

    Under ``frameable_prefixes`` (the gateway's ``/embed/``) ``X-Frame-Options`` is never
    added: it has no value that allows every site, so the route's own CSP
    ``frame-ancestors`` alone decides who may frame it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str] = SECURITY_HEADERS,
        frameable_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        self.frameable_prefixes = frameable_prefixes
        self.frameable_headers = [(k, v) for k, v in self.headers if k != b"x-frame-options"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = str(scope.get("path", ""))
        frameable = bool(self.frameable_prefixes) and path.startswith(self.frameable_prefixes)
        baseline = self.frameable_headers if frameable else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in baseline if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UnhandledErrorMiddleware:
    """Turns an unexpected exception into the JSON 500 *inside* the other middleware.

    Starlette renders unhandled exceptions in its outermost ``ServerErrorMiddleware``,
    outside every user middleware, so that response would miss the request id, the
    security headers and CORS, and the access log would never see its status. Here the
    app's own ``Exception`` handler (``infra.errors``: one log line, one JSON body) is
    called instead. If the response had already started there is nothing to send: the
    exception propagates and the server closes the connection.
    """

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise
            response = await self._render(scope, exc)
            await response(scope, receive, send)

    async def _render(self, scope: Scope, exc: Exception) -> Response:
        handler = self.fastapi_app.exception_handlers.get(Exception)
        if handler is not None:
            result = handler(Request(scope), exc)
            response = await result if isinstance(result, Awaitable) else result
            if isinstance(response, Response):
                return response
        structlog.get_logger("videoforge.errors").exception("unhandled_error", exc_info=exc)
        from fastapi.responses import JSONResponse

        return JSONResponse(
            error_body("internal_error", "Something went wrong on our side."), status_code=500
        )


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
    :class:`SecurityHeadersMiddleware`). Call once, before the app serves its first request.
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
        SecurityHeadersMiddleware,
        headers=SECURITY_HEADERS if security_headers is None else security_headers,
        frameable_prefixes=frameable_prefixes,
    )
    app.add_middleware(AccessLogMiddleware, service=service)
    app.add_middleware(RequestIdMiddleware)
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
    from :class:`AccessLogMiddleware` (with request id, route and latency).
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
        uvicorn.run(getattr(importlib.import_module(module_name), function)(settings), **options)
        return
    os.environ.update({"HOST": settings.host, "PORT": str(settings.port)})
    with tempfile.NamedTemporaryFile(prefix=f"videoforge-{service}-", suffix=".lock") as lock:
        os.environ[LEADER_LOCK_ENV] = lock.name
        uvicorn.run(f"{module_name}:from_env", factory=True, workers=workers, **options)
