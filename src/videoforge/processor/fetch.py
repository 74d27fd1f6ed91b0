"""Download a user-supplied URL without letting it reach anything private (SSRF).

Rules (SECURITY.md, "Import by URL"):

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
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from videoforge.settings import Settings

Resolver = Callable[[str, int], Awaitable[list[str]]]
#: Told the declared body size before the body is saved (may raise to decline it).
LengthCallback = Callable[[int], Awaitable[None]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_CHUNK = 64 * 1024
DEFAULT_TIMEOUT = 1800.0  # seconds for a whole import, redirects included


class FetchRejected(Exception):
    """Permanent: this URL (or where it leads) must not or cannot be fetched."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class FetchFailed(Exception):
    """Transient: the fetch may succeed later (network error, 5xx, timeout)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FetchResult:
    """What was downloaded, from where."""

    url: str  # the final URL, after redirects
    address: str  # the IP address the body came from
    size: int
    content_type: str | None
    redirects: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------- addresses
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", incl. 0.0.0.0
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (cloud metadata)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. 255.255.255.255
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "::ffff:0:0/96",  # IPv4-mapped: only its embedded address may be judged
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, incl. Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPAT = ipaddress.IPv6Network("::/96")
# A host made only of numbers (decimal, 0x-hex, 0-octal) in one to four dotted parts is
# an IPv4 address to every resolver and browser, however odd it looks.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}\.?$", re.IGNORECASE)
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|\d+)$", re.IGNORECASE)


def embedded_addresses(address: IPAddress) -> list[IPAddress]:
    """``address`` and every IPv4 address hidden inside it."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address in _NAT64 or (address in _V4_COMPAT and int(address) > 1):
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
    return found


def is_public_address(address: IPAddress) -> bool:
    """True when ``address`` (and everything embedded in it) is a public unicast address."""
    for candidate in embedded_addresses(address):
        blocked = _BLOCKED_V4 if isinstance(candidate, ipaddress.IPv4Address) else _BLOCKED_V6
        if any(candidate in network for network in blocked):
            return False
        if (
            not candidate.is_global
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_unspecified
            or candidate.is_private
        ):
            return False
    return True


def parse_host_address(host: str) -> IPAddress | None:
    """The address a URL host denotes if it is an IP literal in any spelling, else None.

    Raises :class:`FetchRejected` for a host that is numeric but not a valid address.
    """
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise FetchRejected("bad_url", "IPv6 zone identifiers are not allowed.")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise FetchRejected("bad_url", "The host is not a valid IPv6 address.") from None
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_HOST.match(host) or _NUMERIC_LABEL.match(last_label):
        # A host ending in a number is an IPv4 address or nothing (as in the URL
        # standard): "1.2.3.4.5" or "foo.127" must not reach a resolver as a name.
        try:
            # inet_aton implements the legacy forms exactly as resolvers do.
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise FetchRejected("bad_url", "The host is not a valid address.") from None
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (all A/AAAA answers)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed("dns_error", f"Could not resolve {host}: {exc.strerror}.") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# ---------------------------------------------------------------------------- hops
@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # as it goes in Host / SNI (IDNA-encoded)
    port: int
    path: str  # path + query
    address: IPAddress

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def pinned_url(self) -> str:
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{ip}:{self.port}{self.path}"


def _split(url: str, allowed_ports: Collection[int]) -> tuple[str, str, int, str]:
    if len(url) > 4096 or any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in url):
        raise FetchRejected("bad_url", "The URL is malformed.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRejected("bad_url", "The URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRejected("bad_scheme", "Only http and https URLs can be imported.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise FetchRejected("userinfo", "URLs with a user name or password are not allowed.")
    host = parts.hostname or ""
    if not host:
        raise FetchRejected("bad_url", "The URL has no host.")
    port = port if port is not None else (443 if scheme == "https" else 80)
    if port not in allowed_ports:
        raise FetchRejected("bad_port", f"Port {port} is not allowed.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


async def _check(
    url: str,
    *,
    allowed_ports: Collection[int],
    resolver: Resolver,
    allowed: frozenset[IPAddress],
) -> _Target:
    scheme, host, port, path = _split(url, allowed_ports)
    literal = parse_host_address(host)
    if literal is not None:
        addresses = [literal]
        host_name = str(literal)
    else:
        try:
            host_name = host.rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise FetchRejected("bad_url", "The host name is not valid.") from None
        answers = await resolver(host_name, port)
        if not answers:
            raise FetchFailed("dns_error", f"{host_name} has no address.")
        addresses = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError:
                raise FetchRejected("blocked_address", "The host resolved to garbage.") from None
    for address in addresses:
        if address not in allowed and not is_public_address(address):
            # One bad answer spoils all: a name that is half internal is not trusted.
            raise FetchRejected(
                "blocked_address", "The URL points at a private or reserved network address."
            )
    return _Target(url, scheme, host_name, port, path, addresses[0])


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
    allowed = frozenset(ipaddress.ip_address(a) for a in allow_addresses)
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
            target = await _check(
                url, allowed_ports=allowed_ports, resolver=resolver, allowed=allowed
            )
            request = client.build_request(
                "GET",
                target.pinned_url,
                headers={
                    "Host": target.host_header,
                    "Accept-Encoding": "identity",
                    "User-Agent": "VideoForge-Importer/1",
                },
                extensions={"sni_hostname": target.host},
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
