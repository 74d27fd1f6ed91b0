"""``videoforge gallery``: serve the Gallery on ``HOST``:``PORT`` (5000 by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videoforge.settings import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def build(settings: Settings) -> FastAPI:
    """The Gallery app on its own backends (built in its lifespan)."""
    from videoforge.gallery.app import create_app

    return create_app(settings)


def from_env() -> FastAPI:
    """The app factory each process of ``--workers N`` starts from."""
    from videoforge.infra import heap, tracing
    from videoforge.infra.logging import configure_logging

    settings = load_settings()
    configure_logging(settings, service="gallery")
    tracing.configure("gallery")
    return heap.settle_after_startup(build(settings))


def run(settings: Settings) -> None:
    """Run the Gallery with uvicorn until SIGTERM/Ctrl-C (views are flushed on the way out)."""
    from videoforge.infra.http import run_app

    run_app("videoforge.gallery.main:build", settings=settings, service="gallery")
