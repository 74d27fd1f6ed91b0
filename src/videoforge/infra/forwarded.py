"""``X-Forwarded-*`` believed only from the proxies the operator named.

A client that talks to a service directly could otherwise choose the address its rate
limits and view counts are keyed on, and the host its links are built from. So the
peer's own address decides: from a peer in ``FORWARDED_ALLOW_IPS`` the client address is
the rightmost ``X-Forwarded-For`` hop that is not itself a trusted proxy (with ``*``, the
rightmost hop: the one the peer appended), the scheme comes from ``X-Forwarded-Proto``
and the host from ``X-Forwarded-Host``; from anyone else these headers are ignored.
uvicorn's own proxy-header handling is turned off (``run_app``), so this is the one rule,
and it also covers the host, which uvicorn's does not.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

#: The scope key under which a trusted proxy's ``X-Forwarded-Host`` is passed on.
FORWARDED_HOST = "videoforge.forwarded_host"
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
_SCHEMES = {"http": {"http", "https"}, "websocket": {"ws", "wss"}}
_DONE = "videoforge.forwarded_done"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses and networks (or ``*``) whose forwarding headers are believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        entries = list(entries)
        self.everyone = "*" in entries
        self.networks: list[Network] = [
            ipaddress.ip_network(e, strict=False) for e in entries if e != "*"
        ]

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class ForwardedHeadersMiddleware:
    """Rewrites the client address and scheme, and passes on the host, for trusted peers."""

    def __init__(self, app: ASGIApp, *, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _SCHEMES or scope.get(_DONE):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope[_DONE] = True
        client = scope.get("client")
        if self.trusted and client and client[0] in self.trusted:
            self._apply(scope, Headers(scope=scope))
        await self.app(scope, receive, send)

    def _apply(self, scope: Scope, headers: Headers) -> None:
        hops = [
            hop.strip()
            for value in headers.getlist("x-forwarded-for")
            for hop in value.split(",")
            if hop.strip()
        ]
        if hops:
            if self.trusted.everyone:
                # Every peer is a proxy, but only the hop the peer itself appended can be
                # believed: with every hop "trusted", the leftmost would be whatever the
                # client wrote (a load balancer appends to the client's header).
                client = hops[-1]
            else:
                untrusted = [hop for hop in hops if hop not in self.trusted]
                # The rightmost hop a trusted proxy did not add is the real client:
                # anything to its left was written by the client itself.
                client = untrusted[-1] if untrusted else hops[0]
            scope["client"] = (client, 0)
        proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if proto in _SCHEMES[scope["type"]]:
            scope["scheme"] = proto
        host = headers.get("x-forwarded-host", "").split(",")[0].strip()
        if host and _HOST.match(host):
            scope[FORWARDED_HOST] = host


def public_base_url(request: Request, public_url: str | None) -> str:
    """Where clients reach us: ``PUBLIC_URL``, else the host a trusted proxy was asked
    for, else the request's own (only possible on loopback: see
    ``Settings.require_safe_to_listen``)."""
    if public_url:
        return public_url
    forwarded = request.scope.get(FORWARDED_HOST)
    if forwarded:
        return f"{request.url.scheme}://{forwarded}"
    return str(request.base_url).rstrip("/")


def client_block(ip: str) -> str:
    """The unit a client address is counted in (rate limits, anonymous views): an IPv4
    address as is (IPv4-mapped IPv6 unwrapped), an IPv6 address as its /64 — one
    subscriber's block, whose interface half the client may change at will. Anything
    that is not an address (a test client) as given."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
