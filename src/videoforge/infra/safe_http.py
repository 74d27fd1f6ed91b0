"""Outgoing HTTP to user-supplied URLs that can never reach anything private (SSRF).

The core shared by the processor's importer (``processor/fetch.py``) and the gallery's
webhook delivery (``gallery/webhooks``); the rules are SECURITY.md's "Import by URL":

- only ``http``/``https``, no userinfo, only the allowed ports;
- the host is resolved **once per hop**, and every address it resolves to must be public
  after unwrapping every way of writing or embedding an address: legacy IPv4 spellings
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``), IPv4-mapped and -compatible
  IPv6, NAT64, 6to4 and Teredo; loopback, private, link-local (cloud metadata), CGNAT,
  multicast, reserved, documentation and unique-local ranges are refused;
- the connection goes to the address that was checked: the URL is rewritten to that IP,
  and the name travels only in the ``Host`` header and as the TLS SNI / certificate name,
  so no second lookup can return a different answer (DNS rebinding).

:func:`check_url` does the checking and resolving of one hop; :func:`pinned_request`
builds the request that connects to it; :func:`send_once` is a whole request that never
follows a redirect (webhooks). :class:`FetchRejected` is permanent (the URL is not
acceptable); :class:`FetchFailed` is transient (network trouble, timeout).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
class Target:
    """One checked hop: where to connect (``address``) and what to call the host."""

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


def split_url(url: str, allowed_ports: Collection[int]) -> tuple[str, str, int, str]:
    if len(url) > 4096 or any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in url):
        raise FetchRejected("bad_url", "The URL is malformed.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRejected("bad_url", "The URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRejected("bad_scheme", "Only http and https URLs are allowed.")
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


async def check_url(
    url: str,
    *,
    allowed_ports: Collection[int],
    resolver: Resolver,
    allowed: frozenset[IPAddress],
) -> Target:
    """Check ``url`` and resolve its host once: the hop to connect to, or
    :class:`FetchRejected` (never acceptable) / :class:`FetchFailed` (DNS trouble).
    ``allowed`` holds addresses let through although not public (tests only)."""
    scheme, host, port, path = split_url(url, allowed_ports)
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
    return Target(url, scheme, host_name, port, path, addresses[0])


def allowed_set(allow_addresses: Collection[str]) -> frozenset[IPAddress]:
    """The test-only allowance as addresses (exact addresses, never networks)."""
    return frozenset(ipaddress.ip_address(a) for a in allow_addresses)


def pinned_request(
    client: httpx.AsyncClient,
    method: str,
    target: Target,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Request:
    """A request to ``target``'s checked address, with the real name as Host and SNI."""
    return client.build_request(
        method,
        target.pinned_url,
        headers={"Host": target.host_header, **(headers or {})},
        content=content,
        extensions={"sni_hostname": target.host},
    )


def safe_client(timeout: float) -> httpx.AsyncClient:
    """A client for pinned requests: no proxy from the environment (it would resolve
    names itself) and no redirects followed behind our back."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout)


@dataclass(frozen=True)
class SentResponse:
    """What came back from :func:`send_once` (the body cut to ``max_body`` bytes)."""

    status_code: int
    body: bytes
    address: str


async def send_once(
    method: str,
    url: str,
    *,
    content: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the whole request, enforced below
    allowed_ports: Collection[int] = (80, 443),
    resolver: Resolver | None = None,
    allow_addresses: Collection[str] = (),
    max_body: int = 4096,
) -> SentResponse:
    """One request to ``url`` under the rules above; a redirect is returned as it is
    (its status), never followed. ``allow_addresses`` exists for tests only (a loopback
    receiver); it is a parameter so that no environment variable can open the checks."""
    try:
        async with asyncio.timeout(timeout):
            target = await check_url(
                url,
                allowed_ports=allowed_ports,
                resolver=resolver or system_resolver,
                allowed=allowed_set(allow_addresses),
            )
            async with safe_client(timeout) as client:
                request = pinned_request(client, method, target, headers=headers, content=content)
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise FetchFailed("network_error", f"Could not connect: {exc}.") from None
                try:
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) >= max_body:
                            break  # what the receiver says is only logged: a little is enough
                except httpx.HTTPError:
                    pass  # the status arrived; a broken body does not change the outcome
                finally:
                    await response.aclose()
                return SentResponse(
                    response.status_code, bytes(body[:max_body]), str(target.address)
                )
    except TimeoutError:
        raise FetchFailed("timeout", f"No answer within {timeout:g} s.") from None
