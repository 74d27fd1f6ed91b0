"""``videoforge gallery``: serve the Gallery on ``HOST``:``PORT`` (5000 by default)."""

from __future__ import annotations

from videoforge.settings import Settings


def run(settings: Settings) -> None:
    """Run the Gallery with uvicorn until SIGTERM/Ctrl-C (views are flushed on the way out)."""
    from videoforge.gallery.app import create_app
    from videoforge.infra.http import run_app

    run_app(create_app(settings), settings=settings, service="gallery")
