"""A served app freezes the heap its start-up left (:mod:`videoforge.infra.heap`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from videoforge.infra import heap


@pytest.fixture
def collector() -> Iterator[None]:
    """The process's collector as it was, whatever the test froze or changed."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _app(events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append(f"startup, frozen {gc.get_freeze_count()}")
        yield {"built": "at start-up"}
        events.append(f"shutdown, frozen {gc.get_freeze_count() > 0}")

    return FastAPI(lifespan=lifespan)


@pytest.mark.usefixtures("collector")
async def test_the_heap_is_frozen_once_the_start_up_has_finished() -> None:
    events: list[str] = []
    app = heap.settle_after_startup(_app(events))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app) as state:
        # The app's own start-up ran first, whole, and its state is what the server gets.
        assert events == ["startup, frozen 0"]
        assert state == {"built": "at start-up"}
        assert gc.get_freeze_count() > 1000  # the imported modules, classes, the app
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert events == ["startup, frozen 0", "shutdown, frozen True"]


@pytest.mark.usefixtures("collector")
async def test_an_app_that_is_not_served_is_left_alone() -> None:
    events: list[str] = []
    app = _app(events)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] != heap.YOUNG_THRESHOLD
