"""The database queue's table: one row per message, SQS semantics in columns.

A message is *visible* when ``visible_at <= now``; receiving it pushes ``visible_at``
forward by the visibility timeout (it is then *in flight*), bumps ``receive_count``
and issues a new ``receipt_token``, so a consumer holding an older receipt can no
longer delete or extend it. A dead-letter queue is the same table under the queue
name ``"{queue}-dlq"``: dead-lettering is a conditional rename, never a copy.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, utcnow

#: Queue names are short ASCII identifiers; ``-dlq`` is appended for the dead letters.
QUEUE_NAME_MAX = 80


class QueueMessageRow(Base):
    """One message of one named queue (or of a queue's ``-dlq``)."""

    __tablename__ = "queue_messages"

    # An integer key keeps delivery roughly FIFO among messages visible at the same
    # instant, and makes receipts short (``"<id>.<token>"``) and index-backed.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4, unique=True)
    queue: Mapped[str] = mapped_column(String(QUEUE_NAME_MAX))
    body: Mapped[str] = mapped_column(Text())
    #: What travels beside the body (the sender's trace context), as JSON; NULL: none.
    attributes: Mapped[str | None] = mapped_column(Text(), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    visible_at: Mapped[datetime]
    receive_count: Mapped[int] = mapped_column(default=0)
    # The token of the latest receive; NULL until first received.
    receipt_token: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        # The claim and depth queries: "visible messages of this queue, oldest first".
        Index("ix_queue_messages_claim", "queue", "visible_at", "id"),
    )
