"""SqsQueue and ensure_sqs_queues specifics against moto's SQS over HTTP."""

from __future__ import annotations

import json
import socket
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from mypy_boto3_sqs import SQSClient

from videoforge.infra.queue.base import QueueError, ReceiptInvalid
from videoforge.infra.queue.sqs import SqsQueue, ensure_sqs_queues


def _client(endpoint: str) -> SQSClient:
    return boto3.session.Session().client("sqs", region_name="us-east-1", endpoint_url=endpoint)


async def test_ensure_creates_queue_and_dlq_with_redrive_policy(moto_endpoint: str) -> None:
    client = _client(moto_endpoint)
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    url, dlq_url = await ensure_sqs_queues(client, name, 4, 45)
    assert url.endswith(f"/{name}")
    assert dlq_url.endswith(f"/{name}-dlq")

    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    policy = json.loads(attrs["RedrivePolicy"])
    assert int(policy["maxReceiveCount"]) == 4
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert policy["deadLetterTargetArn"] == dlq_arn

    # Idempotent: a second start-up finds the same queues (and may change settings).
    assert await ensure_sqs_queues(client, name, 6, 45) == (url, dlq_url)
    again = client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    assert int(json.loads(again["Attributes"]["RedrivePolicy"])["maxReceiveCount"]) == 6


async def test_dead_letter_url_comes_from_the_redrive_policy(moto_endpoint: str) -> None:
    client = _client(moto_endpoint)
    url, dlq_url = await ensure_sqs_queues(client, f"q-{uuid.uuid4().hex[:8]}", 1, 1)
    q = SqsQueue(url, client=client, default_visibility=1)
    assert q.name == url.rsplit("/", 1)[-1]
    assert await q.dead_letter_url() == dlq_url

    await q.send("poison")
    [msg] = await q.receive(wait_seconds=1)
    await q.change_visibility(msg.receipt, 0)
    assert await q.receive(wait_seconds=0) == []  # moved to the DLQ by the server
    [dead] = await q.dead_letters()
    assert dead.body == "poison"
    # Peeking leaves it visible in the DLQ.
    assert [m.body for m in await q.dead_letters()] == ["poison"]


async def test_queue_without_redrive_policy_has_no_dead_letters(moto_endpoint: str) -> None:
    client = _client(moto_endpoint)
    url = client.create_queue(QueueName=f"plain-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    q = SqsQueue(url, client=client, default_visibility=5)
    assert await q.dead_letters() == []


async def test_receipt_errors_map_to_receipt_invalid(moto_endpoint: str) -> None:
    client = _client(moto_endpoint)
    url, _ = await ensure_sqs_queues(client, f"r-{uuid.uuid4().hex[:8]}", 3, 5)
    q = SqsQueue(url, client=client, default_visibility=5)
    with pytest.raises(ReceiptInvalid):
        await q.change_visibility("not-a-receipt", 5)
    await q.delete("not-a-receipt")  # stale/unknown receipts are a no-op for delete


async def test_sub_second_waits_do_not_spin(moto_endpoint: str) -> None:
    client = _client(moto_endpoint)
    url, _ = await ensure_sqs_queues(client, f"w-{uuid.uuid4().hex[:8]}", 3, 5)
    q = SqsQueue(url, client=client, default_visibility=5)
    calls = 0

    def count(**_: object) -> None:
        nonlocal calls
        calls += 1

    client.meta.events.register("before-call.sqs.ReceiveMessage", count)
    started = time.monotonic()
    assert await q.receive(wait_seconds=1.5) == []
    elapsed = time.monotonic() - started
    # One 1 s long poll, then less than a second is left: no busy loop of short polls.
    assert calls <= 2
    assert 0.9 <= elapsed < 2.5


async def test_unreachable_endpoint_is_a_queue_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = boto3.session.Session().client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    q = SqsQueue(f"http://127.0.0.1:{port}/123456789012/jobs", client=client, default_visibility=5)
    with pytest.raises(QueueError):
        await q.send("x")
    with pytest.raises(QueueError):
        await q.depth()
