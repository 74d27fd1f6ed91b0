"""Download a user-supplied URL without letting it reach anything private (SSRF).

The address checks, the single resolution and the pinned connection are
:mod:`videoforge.infra.safe_http`'s (shared with webhook delivery); this module adds the
import's redirects, size cap and deadline. Rules (SECURITY.md, "Import by URL"):

- only ``http``/``https``, no userinfo, only the allowed ports;
- the host is resolved **once per hop**, and every address it resolves to must be public
  after unwrapping every way of writing or embedding an address: legacy IPv4 spellings
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``), IPv4-mapped and -compatible
  IPv6, NAT64, 6to4 and Teredo; loopback, private, link-local (cloud metadata), CGNAT,
  multicast, reserved, documentation and unique-local ranges are refused;
- the connection goes to the address that was checked: the URL is rewritten to that IP,
  and the name travels only in the ``Host`` header and as the TLS SNI / certificate name,
  so no second lookup can return a different answer (DNS rebinding);
- redirects are followed by hand, each hop checked again, at most ``max_redirects``;
- the body is streamed to disk with a byte cap (whatever ``Content-Length`` says) and
  the whole fetch has a deadline; content codings are refused, so the cap counts the
  bytes that land on disk.

:class:`FetchRejected` is permanent (the URL is not acceptable); :class:`FetchFailed`
is transient (network trouble, 5xx, timeout) and may be retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

from videoforge.infra.safe_http import (
    FetchFailed,
    FetchRejected,
    IPAddress,
    Resolver,
    allowed_set,
    check_url,
    embedded_addresses,
    is_public_address,
    parse_host_address,
    pinned_request,
    system_resolver,
)
from videoforge.settings import Settings

__all__ = [
    "DEFAULT_TIMEOUT",
    "FetchFailed",
    "FetchRejected",
    "FetchResult",
    "LengthCallback",
    "Resolver",
    "embedded_addresses",
    "fetch_to_file",
    "is_public_address",
    "parse_host_address",
    "system_resolver",
]

#: Told the declared body size before the body is saved (may raise to decline it).
LengthCallback = Callable[[int], Awaitable[None]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_CHUNK = 64 * 1024
DEFAULT_TIMEOUT = 1800.0  # seconds for a whole import, redirects included


@dataclass(frozen=True)
class FetchResult:
    """What was downloaded, from where."""

    url: str  # the final URL, after redirects
    address: str  # the IP address the body came from
    size: int
    content_type: str | None
    redirects: list[str] = field(default_factory=list)


async def fetch_to_file(
    url: str,
    dest: Path,
    *,
    max_bytes: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the documented API; enforced below
    allowed_ports: Collection[int] | None = None,
    resolver: Resolver | None = None,
    max_redirects: int = 3,
    allow_addresses: Collection[str] = (),
    settings: Settings | None = None,
    on_length: LengthCallback | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` under the SSRF rules above.

    Limits not given explicitly come from ``settings`` (``IMPORT_MAX_BYTES``,
    ``IMPORT_ALLOWED_PORTS``, ``IMPORT_TIMEOUT``; without settings the deadline is
    :data:`DEFAULT_TIMEOUT`).
    ``allow_addresses`` exists for tests only (to fetch from a loopback server); it is a
    parameter precisely so that no environment variable can switch the checks off.
    ``on_length`` is awaited with the final response's ``Content-Length`` (when it has
    one) before a byte of the body is written: the worker checks its free space there
    and may raise to decline the download.
    """
    if max_bytes is None:
        if settings is None:
            raise TypeError("fetch_to_file needs max_bytes or settings")
        max_bytes = settings.import_max_bytes
    if allowed_ports is None:
        allowed_ports = tuple(settings.import_allowed_ports) if settings else (80, 443)
    if timeout is None:
        timeout = settings.import_timeout if settings else DEFAULT_TIMEOUT
    allowed = allowed_set(allow_addresses)
    resolve = resolver or system_resolver
    partial = dest.with_name(dest.name + ".part")
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(
                url,
                dest,
                partial,
                max_bytes,
                allowed_ports,
                resolve,
                max_redirects,
                allowed,
                on_length,
            )
    except TimeoutError:
        raise FetchFailed("timeout", f"The download took longer than {timeout:g} s.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


async def _fetch(
    url: str,
    dest: Path,
    partial: Path,
    max_bytes: int,
    allowed_ports: Collection[int],
    resolver: Resolver,
    max_redirects: int,
    allowed: frozenset[IPAddress],
    on_length: LengthCallback | None = None,
) -> FetchResult:
    redirects: list[str] = []
    # trust_env=False: no proxy from the environment, which would resolve names itself.
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
        while True:
            target = await check_url(
                url, allowed_ports=allowed_ports, resolver=resolver, allowed=allowed
            )
            request = pinned_request(
                client,
                "GET",
                target,
                headers={"Accept-Encoding": "identity", "User-Agent": "VideoForge-Importer/1"},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchFailed("network_error", f"Could not download: {exc}.") from None
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchRejected("http_error", "A redirect without a Location.")
                    if len(redirects) >= max_redirects:
                        raise FetchRejected(
                            "too_many_redirects", f"More than {max_redirects} redirects."
                        )
                    url = urljoin(url, location)
                    redirects.append(url)
                    continue
                _check_status(response.status_code)
                size = await _save(response, partial, max_bytes, on_length)
            finally:
                await response.aclose()
            await asyncio.to_thread(partial.replace, dest)
            return FetchResult(
                url=url,
                address=str(target.address),
                size=size,
                content_type=response.headers.get("content-type"),
                redirects=redirects,
            )


def _check_status(status: int) -> None:
    if status >= 500 or status in _TRANSIENT_STATUS:
        raise FetchFailed("server_error", f"The server answered {status}.")
    if status != 200:
        raise FetchRejected("http_error", f"The server answered {status}.")


async def _save(
    response: httpx.Response,
    partial: Path,
    max_bytes: int,
    on_length: LengthCallback | None = None,
) -> int:
    if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        # Compressed bodies would make the cap count the wrong bytes (decompression bombs).
        raise FetchRejected("bad_encoding", "Compressed downloads are not accepted.")
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchRejected("too_large", f"The file is larger than {max_bytes} bytes.")
    if on_length is not None and declared is not None and declared.isdigit():
        await on_length(int(declared))
    written = 0
    handle = await asyncio.to_thread(partial.open, "wb")
    try:
        try:
            async for chunk in response.aiter_raw(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise FetchRejected("too_large", f"The file is larger than {max_bytes} bytes.")
                await asyncio.to_thread(handle.write, chunk)
        except httpx.HTTPError as exc:
            # Includes a body shorter than its Content-Length.
            raise FetchFailed("network_error", f"The download broke off: {exc}.") from None
    finally:
        await asyncio.to_thread(handle.close)
    if written == 0:
        raise FetchRejected("empty", "The URL returned an empty body.")
    return written
