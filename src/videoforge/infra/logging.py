"""Structured logging: JSON lines in production, readable lines in a terminal.

Everything goes through one formatter on the root logger: structlog's own loggers
(``structlog.get_logger(...)``) and the standard library's (uvicorn, alembic, botocore,
asyncio), so an operator's log pipeline sees one format. Every line carries
``service``; ``request_id`` and ``job_id`` appear whenever they are bound with
``structlog.contextvars.bind_contextvars`` / ``bound_contextvars`` (the HTTP middleware
binds the request id, the worker binds the job id).

Logs go to stderr: stdout belongs to the commands that print results
(``videoforge sweep``, ``videoforge users list``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from videoforge.infra import tracing
from videoforge.settings import Environment, Settings

__all__ = ["configure_logging", "resolve_format"]

#: Keys whose values never reach a log line, wherever they appear in an event.
REDACTED_KEYS = frozenset(
    {
        "password",
        "new_password",
        "old_password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "cookie",
        "jwt_secret",
        "db_password",
        "cloudfront_private_key",
    }
)
REDACTED = "[redacted]"

# Libraries that are chatty at DEBUG (every HTTP request botocore signs, every SQL
# statement aiosqlite runs); they stay at INFO or above even when LOG_LEVEL=DEBUG.
_NOISY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "aiosqlite", "asyncio", "httpcore")

# uvicorn's own access line would duplicate the middleware's (which has the request
# id, route and latency), so it is only shown for warnings.
_QUIET_LOGGERS = ("uvicorn.access", "alembic.runtime.plugins")


class _VideoforgeHandler(logging.StreamHandler[TextIO]):
    """The handler installed here (configuring again replaces it).

    Without an explicit stream it writes to whatever ``sys.stderr`` is *now*, not the
    object it was at configuration time: test runners and embedding code swap stderr,
    and a handler holding a closed stream would fail on every line.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._follow_stderr = stream is None
        self._fixed: TextIO = stream if stream is not None else sys.stderr
        super().__init__(self._fixed)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr if self._follow_stderr else self._fixed

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._fixed = value


def resolve_format(settings: Settings, stream: TextIO) -> str:
    """``json`` or ``console``: ``auto`` means JSON in production or when not on a TTY."""
    if settings.log_format in {"json", "console"}:
        return settings.log_format
    if settings.environment is Environment.PRODUCTION:
        return "json"
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def _add_service(service: str) -> Processor:
    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in event_dict.keys() & REDACTED_KEYS:
        event_dict[key] = REDACTED
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes a second, ANSI-coloured copy of its message as an "extra".
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(
    settings: Settings,
    *,
    service: str,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through one formatter for ``service``.

    Safe to call again (e.g. tests, or the embedded server after the CLI): the handler
    installed by a previous call is replaced, not stacked. ``stream`` defaults to stderr.
    """
    out = stream if stream is not None else sys.stderr
    fmt = resolve_format(settings, out)
    level = logging.getLevelName(settings.log_level)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        tracing.log_ids,
        _add_service(service),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        _redact,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]

    renderer: Processor
    final: list[Processor]
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ]
    else:
        isatty = getattr(out, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(colors=bool(isatty and isatty()))
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: configuring again (tests, embedded) must reach loggers that module
        # globals already hold.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=final,
    )
    handler = _VideoforgeHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in list(root.handlers):
        # Replace ours and plain basicConfig() handlers; keep others (e.g. pytest's capture).
        if isinstance(existing, _VideoforgeHandler) or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)

    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "botocore"):
        # uvicorn (with a log_config) and alembic (fileConfig) attach their own handlers;
        # send their records to the root handler instead.
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def current_context() -> MutableMapping[str, Any]:
    """The ids bound in this context (``request_id``, ``job_id``, ...)."""
    return structlog.contextvars.get_contextvars()
