"""Distributed tracing with OpenTelemetry: one trace from an upload to a ready video.

Configured by the standard variables only. Tracing is **on** when an exporter is named
(``OTEL_TRACES_EXPORTER`` = ``otlp`` or ``console``) or an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and
``OTEL_SDK_DISABLED`` is not true. Off, nothing is installed: no provider, no
instrumentation, and every span this code opens is the API's no-op span.

On, each process gets a tracer provider (``service.name`` from ``OTEL_SERVICE_NAME``,
else ``videoforge-<service>``) exporting in batches over OTLP/HTTP, and the FastAPI,
httpx, SQLAlchemy, Redis and botocore instrumentations. The W3C ``traceparent`` travels
with HTTP requests (the instrumentations) and with queue messages: every queue backend
puts :func:`inject` 's carrier into the message's attributes on send, and consumers
continue the trace with :func:`consumer_span`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

#: Paths no trace is made for (probes and scrapes).
EXCLUDED_URLS = "/health,/metrics"

_state: dict[str, Any] = {"enabled": False}
tracer = trace.get_tracer("videoforge")
T = TypeVar("T")


def requested(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    if exporters & {"otlp", "console"}:
        return True
    if "none" in exporters:
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def enabled() -> bool:
    return bool(_state["enabled"])


def configure(service: str, *, exporter: SpanExporter | None = None) -> bool:
    """Set tracing up for this process once; True when it is on.

    ``exporter`` (tests) is used instead of the environment's, synchronously.
    """
    if _state["enabled"]:
        return True
    if exporter is None and not requested():
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    name = os.environ.get("OTEL_SERVICE_NAME") or f"videoforge-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        names = {e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")}
        if "console" in names:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        if "otlp" in names or not names - {""}:  # named, or only an endpoint given
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _state["enabled"] = True
    _state["provider"] = provider
    return True


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    botocore = BotocoreInstrumentor()  # type: ignore[no-untyped-call]
    for instrumentor in (HTTPXClientInstrumentor(), RedisInstrumentor(), botocore):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def shutdown() -> None:
    """Flush what is buffered (at a process's exit)."""
    provider = _state.get("provider")
    if provider is not None:
        provider.shutdown()


def instrument_app(app: FastAPI) -> None:
    """Server spans for ``app``'s requests, continuing an incoming ``traceparent``."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # One span per request, not one per ASGI message as well.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )


def instrument_engine(engine: AsyncEngine) -> None:
    """Client spans for the engine's SQL."""
    if not enabled():
        return
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # The instrumentor's instrument(engine=...) works once per process (it is a
    # singleton) and declares SQLAlchemy < 2.1; its EngineTracer hooks one engine's
    # cursor events, which are the same in 2.1 (the tracing test reads its spans).
    usage = otel_metrics.get_meter("videoforge").create_up_down_counter(
        "db.client.connections.usage", unit="connections"
    )
    EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def inject() -> dict[str, str]:
    """The current trace context as a carrier (``traceparent``, ``tracestate``)."""
    carrier: dict[str, str] = {}
    if enabled():
        propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def consumer_span(name: str, carrier: Mapping[str, str], **attributes: Any) -> Iterator[Any]:
    """A span continuing the trace a queue message was sent in (a new one without)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    parent = propagate.extract(dict(carrier))
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(
            name, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A child span of the current one (a no-op when tracing is off)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


async def traced(name: str, awaitable: Awaitable[T], **attributes: Any) -> T:
    """``await awaitable`` inside :func:`span` ``name``: a step run as a task (the
    task's context, copied when it is created, makes it a child of the current span)."""
    with span(name, **attributes):
        return await awaitable


def log_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span."""
    if not enabled():
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict
