"""The SSRF-safe importer against real loopback servers that count their hits."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import pytest

from videoforge.processor.fetch import (
    FetchFailed,
    FetchRejected,
    fetch_to_file,
    is_public_address,
    parse_host_address,
)

PUBLIC = "93.184.216.34"


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return table[host]

    return resolve


async def fetch(url: str, tmp_path: Path, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"max_bytes": 1_000_000, "timeout": 5.0}
    options.update(kwargs)
    return await fetch_to_file(url, tmp_path / "download", **options)


# --------------------------------------------------------------- blocked targets
def loopback_spellings(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://2130706433:{port}/",  # decimal
        f"http://0x7f000001:{port}/",  # hex
        f"http://0x7f.1:{port}/",  # hex + short
        f"http://0177.0.0.1:{port}/",  # octal
        f"http://0177.1:{port}/",
        f"http://127.1:{port}/",  # short
        f"http://127.0.0.1.:{port}/",  # trailing dot
        f"http://0:{port}/",  # 0.0.0.0 reaches loopback on Linux
        f"http://0.0.0.0:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[::127.0.0.1]:{port}/",  # IPv4-compatible
        f"http://[64:ff9b::7f00:1]:{port}/",  # NAT64
        f"http://[2002:7f00:1::1]:{port}/",  # 6to4
        f"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/",  # Teredo (client 127.0.0.1)
        f"http://localhost:{port}/",  # a name that resolves to loopback
        f"http://public.example:{port}/",  # a "public" name that resolves to loopback
        f"http://mixed.example:{port}/",  # one public and one loopback answer
        f"http://LOCALHOST.:{port}/",
    ]


async def test_every_spelling_of_loopback_is_refused_and_reaches_nothing(
    tmp_path: Path, blocked: Any
) -> None:
    resolver = resolver_for(
        {
            "localhost": ["127.0.0.1"],
            "public.example": ["127.0.0.1"],
            "mixed.example": [PUBLIC, "127.0.0.1"],
        }
    )
    for url in loopback_spellings(blocked.port):
        with pytest.raises(FetchRejected) as caught:
            await fetch(url, tmp_path, allowed_ports=(blocked.port,), resolver=resolver)
        assert caught.value.code == "blocked_address", url
    assert blocked.hits == []
    assert not (tmp_path / "download").exists()


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # cloud metadata
        "fd00:ec2::254",  # AWS metadata over IPv6 (unique local)
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # CGNAT
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "192.0.2.10",  # documentation
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_legacy_ipv4_spellings_parse_like_resolvers_do() -> None:
    for spelling in ("2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7F.0.0.1", "127.0.1"):
        assert parse_host_address(spelling) == ipaddress.IPv4Address("127.0.0.1"), spelling
    assert parse_host_address("example.com") is None
    for not_an_address in ("1.2.3.4.5.6", "999.1.1.1", "foo.127", "0x1g.1.1.1"):
        with pytest.raises(FetchRejected):
            parse_host_address(not_an_address)


async def test_metadata_address_is_refused_without_connecting(tmp_path: Path) -> None:
    resolver = resolver_for({"metadata.example": ["169.254.169.254"]})
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.example/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://2852039166/",
    ):
        with pytest.raises(FetchRejected) as caught:
            # A 1 s budget: a connection attempt to that address would time out instead.
            await fetch(url, tmp_path, resolver=resolver, timeout=1.0)
        assert caught.value.code == "blocked_address", url


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/video.mp4", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://example.com:70/", "bad_scheme"),
        ("javascript:alert(1)", "bad_scheme"),
        ("http://user:pass@example.com/v.mp4", "userinfo"),
        ("http://example.com@127.0.0.1/", "userinfo"),
        ("http://example.com:8080/v.mp4", "bad_port"),
        ("https://example.com:22/", "bad_port"),
        ("http:///nohost", "bad_url"),
        ("http://exa mple.com/", "bad_url"),
        ("http://example.com:99999/", "bad_url"),
        ("http://[fe80::1%25eth0]/", "bad_url"),
    ],
)
async def test_bad_urls_are_refused_before_any_lookup(tmp_path: Path, url: str, code: str) -> None:
    calls: list[str] = []
    with pytest.raises(FetchRejected) as caught:
        await fetch(url, tmp_path, resolver=resolver_for({}, calls))
    assert caught.value.code == code
    assert calls == []


# --------------------------------------------------------------- the happy path
async def test_downloads_from_the_checked_address_with_the_real_host_name(
    tmp_path: Path, origin: Any, helpers: Any
) -> None:
    body = bytes(range(256)) * 400
    origin.routes["/clip.mp4"] = lambda h: helpers.send(h, 200, body, {"Content-Type": "video/mp4"})
    calls: list[str] = []
    result = await fetch(
        f"http://media.example:{origin.port}/clip.mp4?x=1",
        tmp_path,
        allowed_ports=(origin.port,),
        resolver=resolver_for({"media.example": ["127.0.0.2"]}, calls),
        allow_addresses=["127.0.0.2"],
    )
    assert (tmp_path / "download").read_bytes() == body
    assert (result.size, result.address, result.content_type) == (
        len(body),
        "127.0.0.2",
        "video/mp4",
    )
    assert calls == ["media.example"]  # one lookup, and the connection went to its answer
    assert origin.hits == [("/clip.mp4?x=1", f"media.example:{origin.port}")]
    assert not (tmp_path / "download.part").exists()


async def test_the_test_allowance_is_exact(tmp_path: Path, blocked: Any) -> None:
    # Allowing 127.0.0.2 does not open the rest of loopback.
    with pytest.raises(FetchRejected):
        await fetch(
            blocked.url, tmp_path, allowed_ports=(blocked.port,), allow_addresses=["127.0.0.2"]
        )
    assert blocked.hits == []


async def test_dns_rebinding_cannot_switch_the_address(
    tmp_path: Path, origin: Any, helpers: Any, make_server: Any
) -> None:
    """The name resolves once; a second lookup (which would say 127.0.0.1) never happens."""
    # An "internal" twin on 127.0.0.1 at the very same port: a client that resolved the
    # name again when connecting would land here.
    twin = make_server("127.0.0.1", origin.port)
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    origin.routes["/v"] = lambda h: helpers.send(h, 200, b"from origin")
    await fetch(
        f"http://rebind.example:{origin.port}/v",
        tmp_path,
        allowed_ports=(origin.port,),
        resolver=rebinding,
        allow_addresses=["127.0.0.2"],
    )
    assert (tmp_path / "download").read_bytes() == b"from origin"
    assert calls == ["rebind.example"]
    assert twin.hits == []
    assert [path for path, _ in origin.hits] == ["/v"]


# ------------------------------------------------------------------- redirects
@pytest.mark.parametrize(
    "target",
    [
        "{blocked}/admin",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://internal.example:{port}/",
        "http://2130706433:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "file:///etc/passwd",
    ],
)
async def test_redirect_to_an_internal_address_reaches_nothing(
    tmp_path: Path, origin: Any, blocked: Any, helpers: Any, target: str
) -> None:
    location = target.format(blocked=blocked.url, port=blocked.port)
    origin.routes["/start"] = helpers.redirect(location)
    with pytest.raises(FetchRejected) as caught:
        await fetch(
            f"{origin.url}/start",
            tmp_path,
            allowed_ports=(origin.port, blocked.port, 80),
            resolver=resolver_for({"internal.example": ["127.0.0.1"]}),
            allow_addresses=["127.0.0.2"],
        )
    assert caught.value.code in {"blocked_address", "bad_scheme"}
    assert [path for path, _ in origin.hits] == ["/start"]
    assert blocked.hits == []


async def test_redirects_are_followed_and_limited(
    tmp_path: Path, origin: Any, helpers: Any
) -> None:
    for i in range(5):
        origin.routes[f"/r{i}"] = helpers.redirect(f"/r{i + 1}", status=301 if i % 2 else 307)
    origin.routes["/r5"] = lambda h: helpers.send(h, 200, b"arrived")
    common = {"allowed_ports": (origin.port,), "allow_addresses": ["127.0.0.2"]}
    result = await fetch(f"{origin.url}/r2", tmp_path, max_redirects=3, **common)
    assert result.url.endswith("/r5")
    assert len(result.redirects) == 3
    assert (tmp_path / "download").read_bytes() == b"arrived"
    origin.hits.clear()
    with pytest.raises(FetchRejected) as caught:
        await fetch(f"{origin.url}/r0", tmp_path / "x", max_redirects=3, **common)
    assert caught.value.code == "too_many_redirects"
    assert len(origin.hits) == 4  # the first request and three redirects, no more


# ------------------------------------------------------------------ size, time
async def test_size_cap_with_honest_length(tmp_path: Path, origin: Any, helpers: Any) -> None:
    origin.routes["/big"] = lambda h: helpers.send(h, 200, b"x" * 5000)
    with pytest.raises(FetchRejected) as caught:
        await fetch(
            f"{origin.url}/big",
            tmp_path,
            max_bytes=4096,
            allowed_ports=(origin.port,),
            allow_addresses=["127.0.0.2"],
        )
    assert caught.value.code == "too_large"
    assert not any(tmp_path.iterdir())


async def test_size_cap_without_a_length(tmp_path: Path, origin: Any, helpers: Any) -> None:
    origin.routes["/stream"] = helpers.chunked(10 * 1024 * 1024)
    with pytest.raises(FetchRejected) as caught:
        await fetch(
            f"{origin.url}/stream",
            tmp_path,
            max_bytes=200_000,
            allowed_ports=(origin.port,),
            allow_addresses=["127.0.0.2"],
        )
    assert caught.value.code == "too_large"
    assert not any(tmp_path.iterdir())


async def test_a_lying_length_cannot_smuggle_more_bytes(
    tmp_path: Path, origin: Any, helpers: Any
) -> None:
    # Claims 100 bytes, sends 50 000: only what was declared is read, and it is capped.
    origin.routes["/liar"] = lambda h: helpers.send(h, 200, b"y" * 50_000, length=100)
    result = await fetch(
        f"{origin.url}/liar",
        tmp_path,
        max_bytes=1000,
        allowed_ports=(origin.port,),
        allow_addresses=["127.0.0.2"],
    )
    assert result.size == 100
    # Claims more than it sends: a broken transfer, not a short file.
    origin.routes["/short"] = lambda h: helpers.send(h, 200, b"z" * 10, length=500)
    with pytest.raises(FetchFailed):
        await fetch(
            f"{origin.url}/short",
            tmp_path,
            allowed_ports=(origin.port,),
            allow_addresses=["127.0.0.2"],
        )


async def test_deadline(tmp_path: Path, origin: Any, helpers: Any) -> None:
    origin.routes["/slow"] = helpers.slow(3)
    with pytest.raises(FetchFailed) as caught:
        await fetch(
            f"{origin.url}/slow",
            tmp_path,
            timeout=0.5,
            allowed_ports=(origin.port,),
            allow_addresses=["127.0.0.2"],
        )
    assert caught.value.code == "timeout"


async def test_deadline_comes_from_import_timeout_setting(
    tmp_path: Path, origin: Any, helpers: Any
) -> None:
    from videoforge.settings import load_settings

    origin.routes["/slow"] = helpers.slow(3)
    settings = load_settings(
        IMPORT_TIMEOUT=0.5, IMPORT_ALLOWED_PORTS=[origin.port], VIDEOFORGE_DATA_DIR=tmp_path
    )
    started = time.monotonic()
    with pytest.raises(FetchFailed) as caught:
        await fetch_to_file(
            f"{origin.url}/slow",
            tmp_path / "download",
            settings=settings,
            allow_addresses=["127.0.0.2"],
        )
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 2.5


async def test_status_codes_split_transient_from_permanent(
    tmp_path: Path, origin: Any, helpers: Any
) -> None:
    common = {"allowed_ports": (origin.port,), "allow_addresses": ["127.0.0.2"]}
    origin.routes["/503"] = lambda h: helpers.send(h, 503, b"busy")
    origin.routes["/404"] = lambda h: helpers.send(h, 404, b"gone")
    origin.routes["/gzip"] = lambda h: helpers.send(h, 200, b"x", {"Content-Encoding": "gzip"})
    with pytest.raises(FetchFailed):
        await fetch(f"{origin.url}/503", tmp_path, **common)
    with pytest.raises(FetchRejected) as not_found:
        await fetch(f"{origin.url}/404", tmp_path, **common)
    with pytest.raises(FetchRejected) as gzip:
        await fetch(f"{origin.url}/gzip", tmp_path, **common)
    assert (not_found.value.code, gzip.value.code) == ("http_error", "bad_encoding")


async def test_connection_refused_is_transient(tmp_path: Path, origin: Any) -> None:
    port = origin.port
    origin.close()
    with pytest.raises(FetchFailed) as caught:
        await fetch(
            f"http://127.0.0.2:{port}/",
            tmp_path,
            allowed_ports=(port,),
            allow_addresses=["127.0.0.2"],
        )
    assert caught.value.code == "network_error"


async def test_limits_can_come_from_settings(tmp_path: Path, origin: Any, helpers: Any) -> None:
    from videoforge.settings import load_settings

    settings = load_settings(IMPORT_MAX_BYTES=1000, IMPORT_ALLOWED_PORTS=str(origin.port))
    origin.routes["/ok"] = lambda h: helpers.send(h, 200, b"k" * 1000)
    origin.routes["/big"] = lambda h: helpers.send(h, 200, b"k" * 1001)
    url = f"{origin.url}/ok"
    result = await fetch_to_file(
        url, tmp_path / "a", settings=settings, allow_addresses=["127.0.0.2"]
    )
    assert result.size == 1000
    with pytest.raises(FetchRejected) as too_large:
        await fetch_to_file(
            f"{origin.url}/big", tmp_path / "b", settings=settings, allow_addresses=["127.0.0.2"]
        )
    with pytest.raises(FetchRejected) as bad_port:
        await fetch_to_file("http://example.com/", tmp_path / "c", settings=settings)
    assert (too_large.value.code, bad_port.value.code) == ("too_large", "bad_port")
