"""Imports every service's table models so metadata is complete (for Alembic and tests).

Services never import each other; only this registry (used by migrations and tests)
sees them all.
"""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "videoforge.infra.queue.models",
    "videoforge.gallery.models",
    "videoforge.gallery.usage.models",
    "videoforge.gallery.captions.models",
    "videoforge.gallery.comments.models",
    "videoforge.gallery.ratings.models",
    "videoforge.gallery.playlists.models",
    "videoforge.gallery.moderation.models",
    "videoforge.gallery.lifecycle.models",
    "videoforge.gallery.webhooks.models",
    "videoforge.jobs.models",
    "videoforge.gateway.accounts.models",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
