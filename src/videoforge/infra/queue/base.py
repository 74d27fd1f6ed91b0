"""The queue interface, with SQS semantics on every backend.

send; long-poll receive with a visibility timeout; change visibility; delete; a
receive count per message; after ``max_receives`` receives a message moves to the
queue's dead-letter queue instead of being delivered again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class QueueError(Exception):
    """A transient queue failure."""


class ReceiptInvalid(QueueError):
    """The receipt handle is no longer valid: the message was deleted, or its
    visibility expired and it was received again by someone else."""


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: str
    receipt: str
    receive_count: int
    #: What travels beside the body: the sender's trace context (``traceparent``).
    attributes: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Queue(Protocol):
    name: str

    async def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue; returns the message id. The current trace context goes with it, in
        the message's attributes (``infra.tracing``)."""

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 20,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """Long-poll: return as soon as a message is available, or empty after the wait."""

    # `timeout` is SQS's visibility timeout in seconds, not an operation deadline.
    async def change_visibility(self, receipt: str, timeout: int) -> None:  # noqa: ASYNC109
        """Extend (or with 0, end) the invisibility; :class:`ReceiptInvalid` if lost."""

    async def delete(self, receipt: str) -> None:
        """Delete a received message; deleting with a stale receipt is a no-op."""

    async def depth(self) -> int:
        """Approximate number of visible messages (for metrics and autoscaling)."""

    async def dead_letters(self, max_messages: int = 10) -> list[QueueMessage]:
        """Peek-receive from the dead-letter queue (operators, tests)."""


@dataclass(frozen=True)
class Queues:
    jobs: Queue
    events: Queue
