"""Loopback HTTP servers that count every request, for the SSRF-safe fetcher's tests.

``blocked`` listens on 127.0.0.1 and plays the internal service an attacker wants to
reach: every test asserts it was never hit. ``origin`` listens on 127.0.0.2 and plays a
public server; tests allow exactly that address through ``allow_addresses``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Route = Callable[[BaseHTTPRequestHandler], None]


class CountingServer:
    """A threaded HTTP server with per-path handlers; records (path, Host) of each hit."""

    def __init__(self, address: str, port: int = 0) -> None:
        self.hits: list[tuple[str, str]] = []
        self.routes: dict[str, Route] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits.append((self.path, self.headers.get("Host", "")))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    send(self, 200, b"secret internal data")
                else:
                    route(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.address = address
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{address}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> None:
    """Answer with ``body``; ``length`` may lie about it (None: the true length)."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.send_header("Connection", "close")
    handler.end_headers()
    with contextlib.suppress(OSError):  # the client may hang up early (size cap): expected
        handler.wfile.write(body)
    handler.close_connection = True


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: send(h, status, headers={"Location": location})


def chunked(total: int, chunk: int = 65536) -> Route:
    """A body of ``total`` bytes with no Content-Length (chunked transfer coding)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        sent = 0
        try:
            while sent < total:
                part = min(chunk, total - sent)
                h.wfile.write(f"{part:x}\r\n".encode() + b"v" * part + b"\r\n")
                sent += part
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up once it had enough: expected
        h.close_connection = True

    return route


def slow(seconds: float) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        send(h, 200, b"late")

    return route


@pytest.fixture
def blocked() -> Iterator[CountingServer]:
    server = CountingServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def origin() -> Iterator[CountingServer]:
    server = CountingServer("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def make_server() -> Iterator[Callable[[str, int], CountingServer]]:
    """Start more counting servers (address, port); all are closed after the test."""
    started: list[CountingServer] = []

    def make(address: str, port: int = 0) -> CountingServer:
        server = CountingServer(address, port)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


class Helpers:
    """What a test's own routes are made of."""

    send = staticmethod(send)
    redirect = staticmethod(redirect)
    chunked = staticmethod(chunked)
    slow = staticmethod(slow)


@pytest.fixture
def helpers() -> Helpers:
    return Helpers()
