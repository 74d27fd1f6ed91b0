"""Prometheus metrics shared by every service, and the ways they are exposed.

All metrics live in prometheus_client's default registry (:data:`REGISTRY`), so a
service's own counters (the processor's transcode histogram, for example) only need to
be declared with ``prometheus_client`` as usual to appear on ``/metrics``. Metrics are
module-level singletons: building an app twice in one process (tests, the embedded
all-in-one) reuses them instead of registering duplicates.

Some values are cheapest to read when scraped rather than kept up to date: queue depth
and jobs by state. A service registers an async *collector* with
:func:`register_collector`; every scrape awaits the collectors (concurrently, each with a
timeout) before rendering, so a slow database cannot hang a scrape and a failing
collector only counts an error.

HTTP services serve ``/metrics`` from :mod:`videoforge.infra.http`; the worker, which has
no HTTP server, calls :func:`start_metrics_server` when ``METRICS_PORT`` is set.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from collections.abc import Iterator
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from videoforge.infra.queue.base import Queues

log = structlog.get_logger("videoforge.metrics")

__all__ = [
    "COLLECTOR_ERRORS",
    "CONTENT_TYPE_LATEST",
    "HTTP_REQUESTS",
    "HTTP_REQUESTS_IN_PROGRESS",
    "HTTP_REQUEST_DURATION",
    "JOBS_BY_STATE",
    "PENDING_DELETIONS",
    "QUEUE_DEPTH",
    "REGISTRY",
    "CollectorFn",
    "MetricsServer",
    "queue_depth_collector",
    "refresh_collectors",
    "register_collector",
    "render_latest",
    "set_jobs_by_state",
    "set_queue_depth",
    "start_metrics_server",
    "unregister_collector",
]

#: Seconds a single collector may take during a scrape before it is abandoned.
COLLECTOR_TIMEOUT_SECONDS = 2.0

# Buckets from 5 ms to 60 s: API calls sit at the low end, uploads proxied through the
# gateway and SSE streams at the high end.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "videoforge_http_requests",
    "HTTP requests handled, by service, method, route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "videoforge_http_request_duration_seconds",
    "Time from request start to the end of the response body.",
    ["service", "method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "videoforge_http_requests_in_progress",
    "HTTP requests currently being served (long for SSE and streamed uploads).",
    ["service", "method"],
)
QUEUE_DEPTH = Gauge(
    "videoforge_queue_depth",
    "Approximate number of visible messages per queue (read at scrape time).",
    ["queue"],
)
JOBS_BY_STATE = Gauge(
    "videoforge_jobs",
    "Jobs per state (read at scrape time).",
    ["state"],
)
PENDING_DELETIONS = Gauge(
    "videoforge_gallery_pending_deletions",
    "Storage deletes waiting in the gallery's outbox after a failure (read at scrape time).",
)
COLLECTOR_ERRORS = Counter(
    "videoforge_metrics_collector_errors",
    "Scrape-time collectors that failed or timed out.",
    ["collector"],
)

CollectorFn = Callable[[], Awaitable[None]]
"""An async callable that updates gauges (e.g. :func:`set_queue_depth`) when awaited."""

_collectors: dict[str, CollectorFn] = {}
_collectors_lock = threading.Lock()


def register_collector(name: str, fn: CollectorFn) -> None:
    """Run ``fn`` before every scrape. Registering a name again replaces the old one.

    ``fn`` updates gauges itself; it is awaited with a timeout, and a failure is logged
    and counted in ``videoforge_metrics_collector_errors_total`` instead of failing the
    scrape.
    """
    with _collectors_lock:
        _collectors[name] = fn


def unregister_collector(name: str) -> None:
    """Stop running the named collector (e.g. on shutdown, before its backends close)."""
    with _collectors_lock:
        _collectors.pop(name, None)


async def _run_one(name: str, fn: CollectorFn, limit_seconds: float) -> None:
    try:
        await asyncio.wait_for(fn(), timeout=limit_seconds)
    except Exception as exc:  # one bad collector must not break the scrape
        COLLECTOR_ERRORS.labels(collector=name).inc()
        log.warning("metrics_collector_failed", collector=name, error=repr(exc))


async def refresh_collectors(
    limit_seconds: float | None = None,
    *,
    extra: Mapping[str, CollectorFn] | None = None,
) -> None:
    """Await every registered collector (and ``extra`` ones, e.g. an app's own)
    concurrently, each bounded by ``limit_seconds`` (default
    :data:`COLLECTOR_TIMEOUT_SECONDS`)."""
    limit = COLLECTOR_TIMEOUT_SECONDS if limit_seconds is None else limit_seconds
    with _collectors_lock:
        items = dict(_collectors)
    if extra:
        items.update(extra)
    if items:
        await asyncio.gather(*(_run_one(name, fn, limit) for name, fn in items.items()))


async def render_latest(extra: Mapping[str, CollectorFn] | None = None) -> bytes:
    """Refresh the collectors, then render the registry in the Prometheus text format."""
    await refresh_collectors(extra=extra)
    return generate_latest(REGISTRY)


def set_queue_depth(queue: str, depth: int) -> None:
    """Record the visible-message count of ``queue`` (``jobs``, ``events``)."""
    QUEUE_DEPTH.labels(queue=queue).set(depth)


def set_jobs_by_state(counts: Mapping[str, int]) -> None:
    """Record the number of jobs per state; states absent from ``counts`` are set to 0.

    Zeroing (rather than removing) keeps every state's series continuous, so a graph
    or an alert on ``videoforge_jobs{state="FAILED"}`` never sees a gap.
    """
    for state in _known_states() | set(counts):
        JOBS_BY_STATE.labels(state=state).set(counts.get(state, 0))


def _known_states() -> set[str]:
    known: set[str] = set()
    for metric in JOBS_BY_STATE.collect():
        for sample in metric.samples:
            known.add(sample.labels["state"])
    return known


def queue_depth_collector(queues: Queues) -> CollectorFn:
    """A collector recording the visible depth of the ``jobs`` and ``events`` queues.

    Dead-letter queues are deliberately not read here: peeking at an SQS queue is a
    receive, which would hide the messages and raise their receive count. In AWS their
    depth comes from CloudWatch (and its alarm); embedded, ``videoforge`` operators use
    the documented inspection steps.
    """

    async def collect() -> None:
        jobs, events = await asyncio.gather(queues.jobs.depth(), queues.events.depth())
        set_queue_depth("jobs", jobs)
        set_queue_depth("events", events)

    return collect


class _RefreshingRegistry(Collector):
    """The default registry, refreshing the async collectors on a given loop first.

    prometheus_client's HTTP server scrapes from its own thread, which cannot await;
    this hands the refresh to the process's event loop and waits for it (bounded).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None, registry: CollectorRegistry):
        self._loop = loop
        self._registry = registry

    def _refresh(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(refresh_collectors(), loop)
        try:
            future.result(timeout=COLLECTOR_TIMEOUT_SECONDS + 1)
        except FutureTimeout:
            future.cancel()
            log.warning("metrics_refresh_timeout")

    def collect(self) -> Iterable[Metric]:
        self._refresh()
        return self._registry.collect()

    def restricted_registry(self, names: Iterable[str]) -> Collector:
        self._refresh()
        return self._registry.restricted_registry(names)


@dataclass
class MetricsServer:
    """A running metrics HTTP server (a daemon thread); :meth:`close` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    port: int,
    *,
    addr: str = "127.0.0.1",
    loop: asyncio.AbstractEventLoop | None = None,
) -> MetricsServer:
    """Serve the default registry over HTTP on ``addr:port`` (for the worker).

    Call it from inside the worker's event loop (or pass ``loop``) so that registered
    async collectors are refreshed on each scrape; without a running loop they are
    skipped and the last values are served. ``port=0`` picks a free port.
    """
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
    registry = _RefreshingRegistry(loop, REGISTRY)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    log.info("metrics_server_started", addr=addr, port=int(server.server_address[1]))
    return MetricsServer(server=server, thread=thread)


def iter_sample_values(name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Every sample of the metric family ``name`` as (labels, value) — for checks and tests."""
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == name:
                yield dict(sample.labels), sample.value
