"""Queue fixtures: the same named queue on SQLite, PostgreSQL and SQS (moto on loopback).

``queue_backend`` is parametrised over the three; ``make_queue`` creates a fresh queue
(unique name, fresh database) and returns a :class:`QueueHarness`, whose ``open()``
gives another independent handle on the same queue (its own engine or boto3 client):
what a second worker process would have.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from videoforge.infra.db import create_engine, session_factory
from videoforge.infra.queue.base import Queue
from videoforge.infra.queue.db import DatabaseQueue
from videoforge.infra.queue.sqs import SqsQueue, ensure_sqs_queues

# Polling the database every 50 ms keeps long-poll tests fast and their timing tight.
TEST_POLL_INTERVAL = 0.05


def sqs_test_client(endpoint: str) -> Any:
    return boto3.session.Session().client("sqs", region_name="us-east-1", endpoint_url=endpoint)


@dataclass
class QueueHarness:
    kind: str  # "sqlite" | "postgres" | "sqs"
    name: str
    max_receives: int
    visibility: int
    database_url: str | None = None
    sqs_endpoint: str | None = None
    sqs_urls: tuple[str, str] | None = None
    _engines: list[AsyncEngine] = field(default_factory=list)

    @property
    def is_database(self) -> bool:
        return self.kind != "sqs"

    async def open(self) -> Queue:
        """A new handle on the queue with its own connection(s)."""
        if self.is_database:
            assert self.database_url
            engine = create_engine(self.database_url, pool_size=2)
            self._engines.append(engine)
            return DatabaseQueue(
                self.name,
                session_factory(engine),
                max_receives=self.max_receives,
                default_visibility=self.visibility,
                poll_interval=TEST_POLL_INTERVAL,
            )
        assert self.sqs_endpoint
        assert self.sqs_urls
        return SqsQueue(
            self.sqs_urls[0],
            client=sqs_test_client(self.sqs_endpoint),
            default_visibility=self.visibility,
        )

    async def aclose(self) -> None:
        for engine in self._engines:
            await engine.dispose()


MakeQueue = Callable[..., Awaitable[QueueHarness]]


@pytest.fixture(params=["sqlite", "postgres", "sqs"])
def queue_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def queue_target(
    queue_backend: str, request: pytest.FixtureRequest
) -> tuple[str | None, str | None]:
    """(database URL, SQS endpoint) for the backend. A sync fixture: the shared database
    fixtures run their own event loop and cannot be set up from inside one."""
    if queue_backend == "sqs":
        return None, str(request.getfixturevalue("moto_endpoint"))
    return str(request.getfixturevalue(f"{queue_backend}_url")), None


@pytest.fixture
async def make_queue(
    queue_backend: str, queue_target: tuple[str | None, str | None]
) -> AsyncIterator[MakeQueue]:
    harnesses: list[QueueHarness] = []
    database_url, endpoint = queue_target

    async def make(*, max_receives: int = 3, visibility: int = 1) -> QueueHarness:
        name = f"q{uuid.uuid4().hex[:12]}"
        harness = QueueHarness(
            kind=queue_backend,
            name=name,
            max_receives=max_receives,
            visibility=visibility,
            database_url=database_url,
            sqs_endpoint=endpoint,
        )
        if endpoint is not None:
            harness.sqs_urls = await ensure_sqs_queues(
                sqs_test_client(endpoint), name, max_receives, visibility
            )
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.aclose()
