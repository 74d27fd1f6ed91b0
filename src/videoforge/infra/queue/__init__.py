"""Message queues with SQS semantics: the interface (:mod:`.base`), the database queue
(:mod:`.db`, embedded default) and Amazon SQS (:mod:`.sqs`).

:func:`build_queues` picks the backend from settings alone: SQS for the ``jobs`` queue
when ``SQS_QUEUE_URL`` is set (then ``SQS_EVENTS_QUEUE_URL`` is required for
``events``), otherwise database queues named ``jobs`` and ``events``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from videoforge.infra.db import session_factory
from videoforge.infra.queue.base import (
    Queue,
    QueueError,
    QueueMessage,
    Queues,
    ReceiptInvalid,
)
from videoforge.infra.queue.db import DatabaseQueue
from videoforge.settings import QueueBackend, Settings

JOBS_QUEUE = "jobs"
EVENTS_QUEUE = "events"


def build_queues(settings: Settings, engine: AsyncEngine) -> Queues:
    """Build the ``jobs`` and ``events`` queues the settings choose. Connects to nothing."""
    if settings.queue_backend is QueueBackend.SQS:
        from videoforge.infra.queue.sqs import SqsQueue, sqs_client

        # Settings refuse SQS_QUEUE_URL without SQS_EVENTS_QUEUE_URL.
        assert settings.sqs_queue_url
        assert settings.sqs_events_queue_url
        client = sqs_client(settings)
        return Queues(
            jobs=SqsQueue(
                settings.sqs_queue_url,
                client=client,
                default_visibility=settings.queue_visibility_timeout,
            ),
            events=SqsQueue(
                settings.sqs_events_queue_url,
                client=client,
                default_visibility=settings.queue_visibility_timeout,
            ),
        )
    sessions = session_factory(engine)

    def database_queue(name: str) -> DatabaseQueue:
        return DatabaseQueue(
            name,
            sessions,
            max_receives=settings.queue_max_receives,
            default_visibility=settings.queue_visibility_timeout,
        )

    return Queues(jobs=database_queue(JOBS_QUEUE), events=database_queue(EVENTS_QUEUE))


__all__ = [
    "EVENTS_QUEUE",
    "JOBS_QUEUE",
    "DatabaseQueue",
    "Queue",
    "QueueError",
    "QueueMessage",
    "Queues",
    "ReceiptInvalid",
    "build_queues",
]
