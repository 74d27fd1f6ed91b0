"""The embedded queue: SQS semantics on a database table (SQLite or PostgreSQL).

Every operation is one short transaction (:func:`~videoforge.infra.db.session_scope`);
nothing is held open while a consumer works on a message.

Claiming is a single ``WITH candidates AS (SELECT … LIMIT n) UPDATE … WHERE id IN
candidates AND <still visible> RETURNING …``. On PostgreSQL the candidates are
selected ``FOR UPDATE SKIP LOCKED`` (and materialised, so evaluated once), so
concurrent consumers skip each other's rows instead of queueing behind them; on SQLite
(where ``FOR UPDATE`` renders as nothing) the engine opens every transaction with
``BEGIN IMMEDIATE`` (see :func:`~videoforge.infra.db.create_engine`), so claims are
serialised by the database write lock. In both, the outer ``visible_at <= now`` guard
makes the claim a conditional update: a row someone else claimed first is not matched.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from sqlalchemy import (
    ColumnElement,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from videoforge.infra import tracing
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.queue.base import QueueError, QueueMessage, ReceiptInvalid
from videoforge.infra.queue.models import QUEUE_NAME_MAX, QueueMessageRow

log = structlog.get_logger("videoforge.queue")

#: SQS limits, enforced here too so that what works embedded also works on SQS.
MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 12 * 3600
MAX_MESSAGES_PER_RECEIVE = 10
MAX_BODY_BYTES = 256 * 1024
DLQ_SUFFIX = "-dlq"

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def dead_letter_name(name: str) -> str:
    """The name of ``name``'s dead-letter queue in the same table."""
    return f"{name}{DLQ_SUFFIX}"


def check_send_args(body: str, delay_seconds: int) -> None:
    """Validate a send the way SQS would (shared by both backends)."""
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be 0..{MAX_DELAY_SECONDS}, got {delay_seconds}")
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise ValueError(f"message body is larger than {MAX_BODY_BYTES} bytes")


def check_receive_args(max_messages: int, visibility_timeout: int) -> None:
    """Validate receive arguments the way SQS would (shared by both backends)."""
    if not 1 <= max_messages <= MAX_MESSAGES_PER_RECEIVE:
        raise ValueError(f"max_messages must be 1..{MAX_MESSAGES_PER_RECEIVE}, got {max_messages}")
    check_visibility(visibility_timeout)


def check_visibility(timeout: int) -> None:
    if not 0 <= timeout <= MAX_VISIBILITY_SECONDS:
        raise ValueError(f"visibility timeout must be 0..{MAX_VISIBILITY_SECONDS}, got {timeout}")


def _parse_receipt(receipt: str) -> tuple[int, str] | None:
    row_id, sep, token = receipt.partition(".")
    if not sep or not token or not row_id.isdigit():
        return None
    return int(row_id), token


class DatabaseQueue:
    """A named queue in the ``queue_messages`` table, with its dead letters in
    ``"{name}-dlq"``.

    ``max_receives=None`` never dead-letters (useful to open a ``-dlq`` itself as a
    queue, e.g. to delete or inspect dead letters with the receipts
    :meth:`dead_letters` returns).
    """

    def __init__(
        self,
        name: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_receives: int | None,
        default_visibility: int,
        poll_interval: float = 0.2,
    ) -> None:
        if not name or not set(name) <= _NAME_CHARS:
            raise ValueError(f"queue name must be letters, digits, '-' or '_': {name!r}")
        if len(dead_letter_name(name)) > QUEUE_NAME_MAX:
            raise ValueError(f"queue name is longer than {QUEUE_NAME_MAX - len(DLQ_SUFFIX)}")
        if max_receives is not None and max_receives < 1:
            raise ValueError("max_receives must be at least 1")
        check_visibility(default_visibility)
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.name = name
        self.dead_letter_queue = dead_letter_name(name)
        self.max_receives = max_receives
        self.default_visibility = default_visibility
        self.poll_interval = poll_interval
        self._sessions = sessions

    def __repr__(self) -> str:
        return f"DatabaseQueue({self.name!r})"

    @asynccontextmanager
    async def _scope(self) -> AsyncIterator[AsyncSession]:
        # Database trouble is a transient queue failure to the caller (a worker backs
        # off and retries); it must not look like a bad message.
        try:
            async with session_scope(self._sessions) as session:
                yield session
        except (DBAPIError, PoolTimeout, OSError) as exc:
            # The driver's own message, not SQLAlchemy's (which repeats SQL and bodies).
            reason = getattr(exc, "orig", None) or exc
            raise QueueError(f"queue {self.name!r}: database error: {reason}") from exc

    async def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue ``body``, invisible for ``delay_seconds``; returns the message id."""
        check_send_args(body, delay_seconds)
        message_id = uuid.uuid4()
        now = utcnow()
        carried = tracing.inject()
        async with self._scope() as session:
            await session.execute(
                insert(QueueMessageRow).values(
                    message_id=message_id,
                    queue=self.name,
                    body=body,
                    attributes=json.dumps(carried) if carried else None,
                    created_at=now,
                    visible_at=now + timedelta(seconds=delay_seconds),
                    receive_count=0,
                )
            )
        return str(message_id)

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 20,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """Long-poll: claim up to ``max_messages`` visible messages, waiting up to
        ``wait_seconds`` for the first one (checked every ``poll_interval``)."""
        timeout = self.default_visibility if visibility_timeout is None else visibility_timeout
        check_receive_args(max_messages, timeout)
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            delivered, dead_lettered = await self._claim(max_messages, timeout)
            if delivered:
                return delivered
            if dead_lettered:
                # Exhausted messages were at the head of the queue; look again at once.
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def _claim(self, limit: int, visibility: int) -> tuple[list[QueueMessage], int]:
        """One claim transaction: returns the delivered messages and how many were
        moved to the dead-letter queue instead."""
        m = QueueMessageRow
        now = utcnow()
        until = now + timedelta(seconds=visibility)
        # One token per claim; the receipt also carries the row id, so it is unique.
        token = secrets.token_hex(16)
        exhausted: ColumnElement[bool] = (
            m.receive_count >= self.max_receives if self.max_receives is not None else false()
        )
        candidates = (
            select(m.id)
            .where(m.queue == self.name, m.visible_at <= now)
            .order_by(m.visible_at, m.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            # Evaluated exactly once: as a plain ``IN (subquery)`` PostgreSQL may re-run
            # the sub-select while the UPDATE locks rows, and SKIP LOCKED then hands it
            # further rows, claiming more than ``limit``.
            .cte("candidates")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        # SET expressions read the row's old values, so `exhausted` is evaluated once
        # per row against the count before this receive (SQS redrive: a message is
        # delivered max_receives times, the next receive dead-letters it).
        stmt = (
            update(m)
            .where(m.id.in_(select(candidates.c.id)), m.queue == self.name, m.visible_at <= now)
            .values(
                queue=case((exhausted, literal(self.dead_letter_queue)), else_=m.queue),
                receive_count=case((exhausted, m.receive_count), else_=m.receive_count + 1),
                visible_at=case(
                    (exhausted, literal(now, m.visible_at.type)),
                    else_=literal(until, m.visible_at.type),
                ),
                receipt_token=token,
            )
            .returning(m.id, m.message_id, m.body, m.receive_count, m.queue, m.attributes)
            .execution_options(synchronize_session=False)
        )
        async with self._scope() as session:
            rows = (await session.execute(stmt)).all()
        delivered: list[QueueMessage] = []
        dead = 0
        for row in sorted(rows, key=lambda r: r.id):
            if row.queue == self.dead_letter_queue:
                dead += 1
                log.warning(
                    "queue_message_dead_lettered",
                    queue=self.name,
                    message_id=str(row.message_id),
                    receive_count=row.receive_count,
                )
                continue
            delivered.append(
                QueueMessage(
                    message_id=str(row.message_id),
                    body=row.body,
                    receipt=f"{row.id}.{token}",
                    receive_count=row.receive_count,
                    attributes=_attributes(row.attributes),
                )
            )
        return delivered, dead

    async def change_visibility(self, receipt: str, timeout: int) -> None:  # noqa: ASYNC109
        """Make the message invisible for ``timeout`` more seconds (0: visible now).

        Raises :class:`ReceiptInvalid` when the message was deleted, dead-lettered or
        received again by someone else since this receipt was issued.
        """
        check_visibility(timeout)
        parsed = _parse_receipt(receipt)
        if parsed is None:
            raise ReceiptInvalid(f"malformed receipt for queue {self.name!r}")
        row_id, token = parsed
        m = QueueMessageRow
        stmt = (
            update(m)
            .where(m.id == row_id, m.queue == self.name, m.receipt_token == token)
            .values(visible_at=utcnow() + timedelta(seconds=timeout))
            .execution_options(synchronize_session=False)
        )
        async with self._scope() as session:
            matched = _rowcount(await session.execute(stmt))
        if matched == 0:
            raise ReceiptInvalid(f"receipt is no longer valid for queue {self.name!r}")

    async def delete(self, receipt: str) -> None:
        """Delete the message this receipt was issued for; a stale receipt is a no-op."""
        parsed = _parse_receipt(receipt)
        if parsed is None:
            return
        row_id, token = parsed
        m = QueueMessageRow
        stmt = (
            delete(m)
            .where(m.id == row_id, m.queue == self.name, m.receipt_token == token)
            .execution_options(synchronize_session=False)
        )
        async with self._scope() as session:
            await session.execute(stmt)

    async def depth(self) -> int:
        """Number of messages visible now (delayed and in-flight ones not counted)."""
        m = QueueMessageRow
        stmt = (
            select(func.count())
            .select_from(m)
            .where(m.queue == self.name, m.visible_at <= utcnow())
        )
        async with self._scope() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def in_flight(self) -> int:
        """Number of messages received and not yet visible again or deleted."""
        m = QueueMessageRow
        stmt = (
            select(func.count())
            .select_from(m)
            .where(m.queue == self.name, m.visible_at > utcnow(), m.receive_count > 0)
        )
        async with self._scope() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def dead_letters(self, max_messages: int = 10) -> list[QueueMessage]:
        """Peek at the oldest dead letters without claiming them. The receipts are
        valid for ``DatabaseQueue("{name}-dlq", ...)``'s delete."""
        m = QueueMessageRow
        stmt = (
            select(m.id, m.message_id, m.body, m.receive_count, m.receipt_token, m.attributes)
            .where(m.queue == self.dead_letter_queue)
            .order_by(m.id)
            .limit(max(1, max_messages))
        )
        async with self._scope() as session:
            rows = (await session.execute(stmt)).all()
        return [
            QueueMessage(
                message_id=str(row.message_id),
                body=row.body,
                receipt=f"{row.id}.{row.receipt_token}",
                receive_count=row.receive_count,
                attributes=_attributes(row.attributes),
            )
            for row in rows
        ]


def _attributes(stored: str | None) -> dict[str, str]:
    if not stored:
        return {}
    try:
        loaded = json.loads(stored)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _rowcount(result: object) -> int:
    count = getattr(result, "rowcount", None)
    return int(count) if count is not None else 0


__all__ = ["DLQ_SUFFIX", "DatabaseQueue", "dead_letter_name"]
