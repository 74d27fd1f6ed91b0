"""Streaming a request to the gallery and its answer back (the mechanism of the
gateway's proxy, routes in :mod:`videoforge.gateway.gallery.proxy`).

The body goes chunk by chunk in both directions (uploads to the local object store can
be large), with method, query string, status and headers kept — minus hop-by-hop
headers — and ``X-Forwarded-*`` and ``X-Request-ID`` added. A gallery that cannot be
reached is a 502 ``upstream_unavailable``.
"""

from __future__ import annotations

import httpx
import structlog
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from videoforge.gateway.gallery.client import UpstreamUnavailable
from videoforge.gateway.ratelimit import client_ip
from videoforge.infra.forwarded import FORWARDED_HOST
from videoforge.infra.http import get_request_id

log = structlog.get_logger("videoforge.gateway.forwarding")

#: RFC 9110 §7.6.1 connection-specific headers, never forwarded in either direction.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def _connection_tokens(headers: list[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


#: Answers up to this size (by their Content-Length) are read whole before being passed
#: on; larger ones, and those of unknown length (event streams), are streamed.
BUFFERED_MAX_BYTES = 1024 * 1024


#: Response headers the gateway's own server writes: passed on too, they came twice.
_SERVER_OWN = frozenset({"date", "server"})


def _small(length: str | None) -> bool:
    return length is not None and length.isdigit() and int(length) <= BUFFERED_MAX_BYTES


def forwardable(
    headers: list[tuple[str, str]], *, drop: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Headers minus hop-by-hop ones (and those the Connection header names)."""
    skip = HOP_BY_HOP | drop | _connection_tokens(headers)
    return [(k, v) for k, v in headers if k.lower() not in skip]


class GalleryProxy:
    """Streams requests to the gallery at ``base_url`` through a shared httpx client."""

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    def _upstream_headers(self, request: Request) -> list[tuple[str, str]]:
        incoming = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        headers = forwardable(
            incoming,
            drop=frozenset(
                {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"}
            ),
        )
        # Only the address the gateway believes (ForwardedHeadersMiddleware has already
        # taken it from a trusted proxy's header, or the peer): passing the incoming
        # header on would hand the gallery hops the client wrote itself.
        headers.append(("X-Forwarded-For", client_ip(request)))
        headers.append(("X-Forwarded-Proto", request.url.scheme))
        # Likewise the host: a trusted proxy's X-Forwarded-Host, else the request's own.
        host = request.scope.get(FORWARDED_HOST) or request.headers.get("host")
        if host:
            headers.append(("X-Forwarded-Host", host))
        rid = get_request_id() or getattr(request.state, "request_id", None)
        if rid:
            headers.append(("X-Request-ID", str(rid)))
        return headers

    async def forward(self, request: Request) -> Response:
        """Send ``request`` to the gallery and stream its answer back."""
        path = request.url.path
        url = f"{self.base_url}{path}"
        if request.url.query:
            url = f"{url}?{request.url.query}"
        has_body = request.method not in _BODYLESS or (
            "content-length" in request.headers or "transfer-encoding" in request.headers
        )
        upstream_request = self.http.build_request(
            request.method,
            url,
            headers=self._upstream_headers(request),
            content=request.stream() if has_body else None,
        )
        try:
            upstream = await self.http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("gallery_proxy_failed", path=path, error=repr(exc))
            raise UpstreamUnavailable("The gallery is not reachable right now.") from None
        response: Response
        if _small(upstream.headers.get("content-length")):
            # A listing, a video's metadata: read whole and sent in one write, rather
            # than streamed in chunks (a write each, and Starlette's streaming machinery:
            # a fifth of the gateway's CPU on a proxied listing).
            try:
                body = b"".join([chunk async for chunk in upstream.aiter_raw()])
            except httpx.HTTPError as exc:
                log.warning("gallery_proxy_failed", path=path, error=repr(exc))
                raise UpstreamUnavailable("The gallery is not reachable right now.") from None
            finally:
                await upstream.aclose()
            response = Response(content=body, status_code=upstream.status_code)
        else:
            response = StreamingResponse(
                upstream.aiter_raw(),
                status_code=upstream.status_code,
                background=BackgroundTask(upstream.aclose),
            )
        # Raw pairs keep repeated headers (Set-Cookie, Link) and the upstream's exact
        # Content-Length/Content-Encoding (the body is passed on undecoded).
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in forwardable(list(upstream.headers.multi_items()), drop=_SERVER_OWN)
        ]
        return response
