"""What every HTTP service installs: the error format (and, from the ops work,
request ids, security headers, CORS and /metrics)."""

from __future__ import annotations

from fastapi import FastAPI

from videoforge.infra.errors import install_error_handlers
from videoforge.settings import Settings


def install_common(app: FastAPI, *, service: str, settings: Settings) -> None:
    """Install the shared middleware and handlers on a service's app."""
    install_error_handlers(app)
    app.state.service_name = service
