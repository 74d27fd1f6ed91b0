"""The cyclic garbage collector of a serving process.

A service process holds a few hundred thousand objects once it has imported its code
and built its app (modules, classes, the routes, the ORM's mappers, pydantic's
validators), and none of them ever become garbage. CPython's collector still walks all
of them on each full collection: measured on the gallery under load, a full collection
took 100 to 200 ms, and since requests wait for it, it set the tail of every latency
figure (`docs/benchmarks.md`, issue 17).

So a served app's lifespan ends its start-up with :func:`settle`: one collection, then
``gc.freeze()``, which moves everything alive into a generation the collector never
walks. What requests allocate is collected as before. The young generation's threshold
is raised too (CPython's default of 700 allocations runs a collection every few
requests here); objects that die young are freed by reference counting anyway, so a
larger young generation only means fewer, equally cheap, collections.

Only the serving entry points (``run_app``, the multi-process factories, embedded
``serve``) do this: an app built in a test process is not frozen, where every test's
app would otherwise stay in memory.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI

log = structlog.get_logger("videoforge.heap")

#: Allocations (net of frees) between collections of the youngest generation.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Collect once, freeze what is left, and make young collections rarer."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    log.info(
        "heap_settled",
        pid=os.getpid(),
        frozen=gc.get_freeze_count(),
        young_threshold=YOUNG_THRESHOLD,
    )


def settle_after_startup(app: FastAPI) -> FastAPI:
    """``app`` with :func:`settle` run when its lifespan's start-up has finished."""
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        async with inner(served) as state:
            settle()
            yield state

    app.router.lifespan_context = lifespan
    return app
