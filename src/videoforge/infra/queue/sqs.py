"""The distributed queue: Amazon SQS (or any SQS-compatible endpoint) through boto3.

boto3 is synchronous; every call runs in a worker thread (``asyncio.to_thread``) so the
event loop keeps serving while a long poll waits. boto3 clients are thread-safe.

Dead letters come from the queue's redrive policy (SQS moves a message to the
dead-letter queue itself once it has been received ``maxReceiveCount`` times);
:func:`ensure_sqs_queues` creates such a pair for development and tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from videoforge.infra import tracing
from videoforge.infra.queue.base import QueueError, QueueMessage, ReceiptInvalid
from videoforge.infra.queue.db import (
    DLQ_SUFFIX,
    MAX_MESSAGES_PER_RECEIVE,
    check_receive_args,
    check_send_args,
    check_visibility,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from videoforge.settings import Settings

log = structlog.get_logger("videoforge.queue")

#: SQS caps a single long poll at 20 seconds; longer waits are several polls.
MAX_LONG_POLL_SECONDS = 20
#: Errors SQS (and compatibles) answer for a receipt that no longer names an
#: in-flight delivery of the message.
_RECEIPT_ERRORS = frozenset(
    {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"}
)


def _error_code(exc: ClientError) -> str:
    # Codes arrive as "ReceiptHandleIsInvalid" or, over the query protocol,
    # "AWS.SimpleQueueService.MessageNotInflight".
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code.rsplit(".", 1)[-1]


class SqsQueue:
    """A :class:`~videoforge.infra.queue.base.Queue` on one SQS queue URL."""

    def __init__(
        self,
        queue_url: str,
        *,
        client: SQSClient,
        dlq_url: str | None = None,
        default_visibility: int,
    ) -> None:
        check_visibility(default_visibility)
        self.queue_url = queue_url
        self.name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        self.default_visibility = default_visibility
        self._client = client
        self._dlq_url = dlq_url

    def __repr__(self) -> str:
        return f"SqsQueue({self.queue_url!r})"

    async def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, **kwargs)
        except ClientError as exc:
            raise QueueError(f"queue {self.name!r}: {_error_code(exc)}: {exc}") from exc
        except BotoCoreError as exc:
            raise QueueError(f"queue {self.name!r}: {exc}") from exc

    async def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue ``body``, invisible for ``delay_seconds``; returns the message id."""
        check_send_args(body, delay_seconds)
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in tracing.inject().items()
        }
        response = await self._call(
            self._client.send_message,
            QueueUrl=self.queue_url,
            MessageBody=body,
            DelaySeconds=delay_seconds,
            **({"MessageAttributes": attributes} if attributes else {}),
        )
        return str(response["MessageId"])

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 20,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """Long-poll (in polls of at most 20 s) until a message arrives or the wait ends."""
        timeout = self.default_visibility if visibility_timeout is None else visibility_timeout
        check_receive_args(max_messages, timeout)
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            # Whole seconds only, rounded down (never waits longer than asked) after
            # a little slack for the time already spent since the deadline was set.
            remaining = deadline - time.monotonic() + 0.1
            wait = min(MAX_LONG_POLL_SECONDS, max(0, math.floor(remaining)))
            messages = await self._receive_from(
                self.queue_url, max_messages=max_messages, wait=wait, visibility=timeout
            )
            if messages:
                return messages
            # Less than a second left: another short poll would only spin.
            if deadline - time.monotonic() < 1:
                return []

    async def _receive_from(
        self, url: str, *, max_messages: int, wait: int, visibility: int
    ) -> list[QueueMessage]:
        response = await self._call(
            self._client.receive_message,
            QueueUrl=url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait,
            VisibilityTimeout=visibility,
            AttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["traceparent", "tracestate"],
        )
        return [_to_message(raw) for raw in response.get("Messages", [])]

    async def change_visibility(self, receipt: str, timeout: int) -> None:  # noqa: ASYNC109
        """Make the message invisible for ``timeout`` more seconds (0: visible now);
        :class:`ReceiptInvalid` when the receipt no longer names an in-flight delivery."""
        check_visibility(timeout)
        try:
            await asyncio.to_thread(
                self._client.change_message_visibility,
                QueueUrl=self.queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=timeout,
            )
        except ClientError as exc:
            if _error_code(exc) in _RECEIPT_ERRORS:
                raise ReceiptInvalid(f"queue {self.name!r}: {exc}") from exc
            raise QueueError(f"queue {self.name!r}: {_error_code(exc)}: {exc}") from exc
        except BotoCoreError as exc:
            raise QueueError(f"queue {self.name!r}: {exc}") from exc

    async def delete(self, receipt: str) -> None:
        """Delete the received message; a stale or unknown receipt is a no-op."""
        try:
            await asyncio.to_thread(
                self._client.delete_message, QueueUrl=self.queue_url, ReceiptHandle=receipt
            )
        except ClientError as exc:
            if _error_code(exc) not in _RECEIPT_ERRORS:
                raise QueueError(f"queue {self.name!r}: {_error_code(exc)}: {exc}") from exc
            log.info("queue_delete_stale_receipt", queue=self.name)
        except BotoCoreError as exc:
            raise QueueError(f"queue {self.name!r}: {exc}") from exc

    async def depth(self) -> int:
        """``ApproximateNumberOfMessages``: visible messages, as SQS counts them."""
        response = await self._call(
            self._client.get_queue_attributes,
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages"],
        )
        return int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    async def dead_letters(self, max_messages: int = 10) -> list[QueueMessage]:
        """Peek at the dead-letter queue (received with a zero visibility timeout, so
        they stay visible). Empty when the queue has no redrive policy."""
        url = await self.dead_letter_url()
        if url is None:
            return []
        count = min(MAX_MESSAGES_PER_RECEIVE, max(1, max_messages))
        return await self._receive_from(url, max_messages=count, wait=0, visibility=0)

    async def dead_letter_url(self) -> str | None:
        """The dead-letter queue's URL: as given, or from the queue's redrive policy."""
        if self._dlq_url is None:
            response = await self._call(
                self._client.get_queue_attributes,
                QueueUrl=self.queue_url,
                AttributeNames=["RedrivePolicy"],
            )
            policy = response.get("Attributes", {}).get("RedrivePolicy")
            if not policy:
                return None
            arn = str(json.loads(policy)["deadLetterTargetArn"])
            # arn:aws:sqs:<region>:<account>:<name>
            *_, account, dlq_name = arn.split(":")
            found = await self._call(
                self._client.get_queue_url, QueueName=dlq_name, QueueOwnerAWSAccountId=account
            )
            self._dlq_url = str(found["QueueUrl"])
        return self._dlq_url


def _to_message(raw: MessageTypeDef) -> QueueMessage:
    attributes = raw.get("Attributes", {})
    carried = {
        name: value["StringValue"]
        for name, value in raw.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    return QueueMessage(
        message_id=raw["MessageId"],
        body=raw["Body"],
        receipt=raw["ReceiptHandle"],
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        attributes=carried,
    )


def sqs_client(settings: Settings) -> SQSClient:
    """A boto3 SQS client for the configured region and endpoint (built at start-up)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        # Read timeout above the 20 s long poll; room for concurrent pollers per client.
        config=Config(
            read_timeout=MAX_LONG_POLL_SECONDS + 10,
            connect_timeout=5,
            max_pool_connections=32,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


async def ensure_sqs_queues(
    client: SQSClient, name: str, max_receives: int, visibility: int
) -> tuple[str, str]:
    """Create (or update) queue ``name`` and its ``name-dlq`` with a redrive policy
    after ``max_receives`` receives; returns ``(url, dlq_url)``. For development and
    tests: production queues belong to the infrastructure stack."""
    check_visibility(visibility)
    if max_receives < 1:
        raise ValueError("max_receives must be at least 1")

    def _create(queue_name: str, attributes: dict[QueueAttributeNameType, str]) -> str:
        try:
            return client.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            if _error_code(exc) not in {"QueueAlreadyExists", "QueueNameExists"}:
                raise
            url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
            client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            return url

    def _ensure() -> tuple[str, str]:
        dlq_url = _create(
            f"{name}{DLQ_SUFFIX}",
            {"MessageRetentionPeriod": str(14 * 24 * 3600)},
        )
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
        url = _create(name, {"VisibilityTimeout": str(visibility), "RedrivePolicy": policy})
        return url, dlq_url

    try:
        return await asyncio.to_thread(_ensure)
    except (ClientError, BotoCoreError) as exc:
        raise QueueError(f"could not create SQS queue {name!r}: {exc}") from exc


__all__ = ["SqsQueue", "ensure_sqs_queues", "sqs_client"]
