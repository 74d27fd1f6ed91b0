"""The shared HTTP middleware: request ids, the access log and metrics, baseline
security headers, and unexpected errors rendered inside all of them.

Pure ASGI (never ``BaseHTTPMiddleware``): messages are passed through one by one, so
streamed responses (SSE, proxied uploads and downloads) are never buffered.

Request id, access log and security headers are one layer (:class:`RequestMiddleware`)
with one ``send`` wrapper: they run on every request, and each layer of its own cost a
coroutine and a wrapped ``send`` per request for nothing. Order, outermost first::

    RequestMiddleware          id in, id out (bound in structlog contextvars); one log
                               line + metrics per request, latency to the body's end;
                               nosniff / Referrer-Policy / X-Frame-Options if absent
    CORSMiddleware             only when CORS_ORIGINS is set
    UnhandledErrorMiddleware   unexpected exceptions -> the JSON 500, inside the above
    (FastAPI: ExceptionMiddleware -> router)
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from starlette.routing import Mount

from videoforge.infra import metrics
from videoforge.infra.errors import error_response

__all__ = [
    "QUIET_PATHS",
    "REQUEST_ID_HEADER",
    "SECURITY_HEADERS",
    "RequestMiddleware",
    "UnhandledErrorMiddleware",
    "get_request_id",
    "route_template",
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

ACCESS_LOGGER = "videoforge.access"
access_log = structlog.get_logger(ACCESS_LOGGER)
#: The standard library logger behind it: asked first whether a line would be written
#: (what structlog's level filter asks), so a line that would not costs nothing.
_access_level = logging.getLogger(ACCESS_LOGGER)


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


class RequestMiddleware:
    """Per request: accepts a sane incoming ``X-Request-ID`` (or makes one), binds it
    and echoes it; adds each baseline header the response does not set itself; writes
    one access line and the request metrics, measured to the body's end.

    Under ``frameable_prefixes`` (the gateway's ``/embed/``) ``X-Frame-Options`` is never
    added: it has no value that allows every site, so the route's own CSP
    ``frame-ancestors`` alone decides who may frame it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        headers: Mapping[str, str] = SECURITY_HEADERS,
        frameable_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.service = service
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        self.frameable_prefixes = frameable_prefixes
        self.frameable_headers = [(k, v) for k, v in self.headers if k != b"x-frame-options"]
        # The metrics' children by label values (bounded: the labels are), looked up
        # once each instead of through labels() on every request.
        self._in_progress: dict[str, Any] = {}
        self._counted: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        request_id = _accepted_id(scope)
        encoded = request_id.encode("latin-1")
        path: str = scope.get("path", "")
        frameable = bool(self.frameable_prefixes) and path.startswith(self.frameable_prefixes)
        baseline = self.frameable_headers if frameable else self.headers
        method: str = scope["method"]
        start = time.perf_counter()
        status = 500
        response_bytes = 0
        recorded = False
        in_progress = self._in_progress.get(method)
        if in_progress is None:
            in_progress = metrics.HTTP_REQUESTS_IN_PROGRESS.labels(
                service=self.service, method=method
            )
            self._in_progress[method] = in_progress

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
            self._count(method, route, status, elapsed)
            quiet = path in QUIET_PATHS and status < 400
            if not _access_level.isEnabledFor(logging.DEBUG if quiet else logging.INFO):
                return
            client = scope.get("client")
            (access_log.debug if quiet else access_log.info)(
                "http_request",
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                bytes=response_bytes,
                client=client[0] if client else None,
            )

        async def send_wrapped(message: Message) -> None:
            nonlocal status, response_bytes
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in baseline if k not in present)
                if b"x-request-id" in present:
                    headers = [(k, v) for k, v in headers if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", encoded))
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                response_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record()
            await send(message)

        in_progress.inc()
        token = _request_id.set(request_id)
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                try:
                    await self.app(scope, receive, send_wrapped)
                finally:
                    record()  # with the request id still bound to its line
        finally:
            _request_id.reset(token)

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        children = self._counted.get(key)
        if children is None:
            labels = {
                "service": self.service,
                "method": method,
                "route": route,
                "status": str(status),
            }
            children = (
                metrics.HTTP_REQUESTS.labels(**labels),
                metrics.HTTP_REQUEST_DURATION.labels(**labels),
            )
            self._counted[key] = children
        children[0].inc()
        children[1].observe(elapsed)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A websocket gets its request id (bound for its log lines) and nothing else."""
        request_id = _accepted_id(scope)
        token = _request_id.set(request_id)
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive, send)
        finally:
            _request_id.reset(token)


def _accepted_id(scope: Scope) -> str:
    incoming = _header(scope, b"x-request-id")
    request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


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
        return error_response("internal_error", "Something went wrong on our side.", 500)
