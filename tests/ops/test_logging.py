"""Structured logging: JSON lines with ids in production, readable lines in a terminal."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import pytest
import structlog

from videoforge.infra.logging import configure_logging, resolve_format
from videoforge.settings import load_settings


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_carry_service_and_bound_ids(log_stream: io.StringIO) -> None:
    configure_logging(load_settings(LOG_FORMAT="json"), service="worker", stream=log_stream)
    log = structlog.get_logger("videoforge.test")

    log.info("before_bind", size=3)
    with structlog.contextvars.bound_contextvars(request_id="req-1", job_id="job-9"):
        log.info("job_step", step="probe")
        logging.getLogger("botocore.test").warning("stdlib %s", "line")
    log.info("after_unbind")

    before, step, stdlib_line, after = _lines(log_stream)
    assert before["event"] == "before_bind"
    assert before["size"] == 3
    assert before["service"] == "worker"
    assert before["level"] == "info"
    assert before["logger"] == "videoforge.test"
    assert before["timestamp"].endswith("Z")
    assert "request_id" not in before

    assert step["request_id"] == "req-1"
    assert step["job_id"] == "job-9"
    assert step["step"] == "probe"

    # Library loggers go through the same formatter, ids included.
    assert stdlib_line["event"] == "stdlib line"
    assert stdlib_line["level"] == "warning"
    assert stdlib_line["logger"] == "botocore.test"
    assert stdlib_line["service"] == "worker"
    assert stdlib_line["job_id"] == "job-9"

    assert "job_id" not in after


def test_json_renders_exceptions_and_redacts_secrets(log_stream: io.StringIO) -> None:
    configure_logging(load_settings(LOG_FORMAT="json"), service="gateway", stream=log_stream)
    log = structlog.get_logger("videoforge.test")
    try:
        raise ValueError("broken thing")
    except ValueError:
        log.exception("failed", password="hunter2", authorization="Bearer abc", user="ann")

    (line,) = _lines(log_stream)
    assert line["level"] == "error"
    assert "ValueError: broken thing" in line["exception"]
    assert line["password"] == "[redacted]"
    assert line["authorization"] == "[redacted]"
    assert line["user"] == "ann"
    assert "hunter2" not in log_stream.getvalue()


def test_level_filters_and_reconfigure_does_not_stack(log_stream: io.StringIO) -> None:
    settings = load_settings(LOG_FORMAT="json", LOG_LEVEL="WARNING")
    configure_logging(settings, service="gallery", stream=log_stream)
    configure_logging(settings, service="gallery", stream=log_stream)
    log = structlog.get_logger("videoforge.test")
    log.info("hidden")
    logging.getLogger("uvicorn.error").info("hidden too")
    log.warning("shown")

    lines = _lines(log_stream)
    assert [line["event"] for line in lines] == ["shown"]


def test_console_mode_is_readable(log_stream: io.StringIO) -> None:
    configure_logging(load_settings(LOG_FORMAT="console"), service="embedded", stream=log_stream)
    with structlog.contextvars.bound_contextvars(request_id="r-42"):
        structlog.get_logger("videoforge.test").info("upload_confirmed", video="v1")
    logging.getLogger("alembic.runtime").info("Running upgrade")

    text = log_stream.getvalue()
    first, second = text.splitlines()
    assert "upload_confirmed" in first
    assert "video=v1" in first
    assert "request_id=r-42" in first
    assert "service=embedded" in first
    assert not first.lstrip().startswith("{")
    assert "Running upgrade" in second


def test_auto_format_follows_tty_and_environment() -> None:
    dev = load_settings(LOG_FORMAT="auto", VIDEOFORGE_ENV="development")
    prod = load_settings(LOG_FORMAT="auto", VIDEOFORGE_ENV="production", JWT_SECRET="x" * 40)
    assert resolve_format(dev, _Tty()) == "console"
    assert resolve_format(dev, io.StringIO()) == "json"
    assert resolve_format(prod, _Tty()) == "json"
    assert resolve_format(load_settings(LOG_FORMAT="console"), io.StringIO()) == "console"


def test_default_handler_follows_the_current_stderr(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging(load_settings(LOG_FORMAT="json"), service="gateway")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    structlog.get_logger("videoforge.test").info("one")
    first.close()  # e.g. a test runner's capture ending
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("videoforge.test").info("two")

    (line,) = _lines(second)
    assert line["event"] == "two"
    assert line["service"] == "gateway"
