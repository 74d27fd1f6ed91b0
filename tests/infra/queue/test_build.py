"""build_queues: the backend is chosen by settings alone."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from videoforge.infra.db import create_engine
from videoforge.infra.queue import DatabaseQueue, build_queues
from videoforge.infra.queue.sqs import SqsQueue, ensure_sqs_queues
from videoforge.settings import Settings, SettingsError, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No configuration leaks in from the developer's environment or a ``.env``."""
    monkeypatch.chdir(tmp_path)
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    monkeypatch.setenv("VIDEOFORGE_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


async def test_database_queues_by_default(clean_env: pytest.MonkeyPatch, sqlite_url: str) -> None:
    clean_env.setenv("QUEUE_MAX_RECEIVES", "2")
    clean_env.setenv("QUEUE_VISIBILITY_TIMEOUT", "7")
    settings = load_settings()
    engine = create_engine(sqlite_url)
    try:
        queues = build_queues(settings, engine)
        assert isinstance(queues.jobs, DatabaseQueue)
        assert isinstance(queues.events, DatabaseQueue)
        assert (queues.jobs.name, queues.events.name) == ("jobs", "events")
        assert queues.jobs.max_receives == 2
        assert queues.jobs.default_visibility == 7

        await queues.jobs.send("job")
        assert await queues.events.receive(wait_seconds=0) == []
        [msg] = await queues.jobs.receive(wait_seconds=0)
        assert msg.body == "job"
    finally:
        await engine.dispose()


async def test_sqs_when_configured(
    clean_env: pytest.MonkeyPatch, moto_endpoint: str, sqlite_url: str
) -> None:
    client = boto3.session.Session().client(
        "sqs", region_name="us-east-1", endpoint_url=moto_endpoint
    )
    suffix = uuid.uuid4().hex[:8]
    jobs_url, _ = await ensure_sqs_queues(client, f"jobs-{suffix}", 3, 30)
    events_url, _ = await ensure_sqs_queues(client, f"events-{suffix}", 3, 30)
    clean_env.setenv("SQS_QUEUE_URL", jobs_url)
    clean_env.setenv("SQS_EVENTS_QUEUE_URL", events_url)
    clean_env.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    clean_env.setenv("AWS_REGION", "us-east-1")

    engine = create_engine(sqlite_url)
    try:
        queues = build_queues(load_settings(), engine)
        assert isinstance(queues.jobs, SqsQueue)
        assert isinstance(queues.events, SqsQueue)
        assert queues.jobs.queue_url == jobs_url
        assert queues.events.queue_url == events_url

        await queues.events.send("an event")
        # It really went to the configured queue on the configured endpoint.
        raw = client.receive_message(QueueUrl=events_url, WaitTimeSeconds=1)
        assert [m["Body"] for m in raw["Messages"]] == ["an event"]
        assert await queues.jobs.receive(wait_seconds=0) == []
    finally:
        await engine.dispose()


def test_sqs_jobs_without_events_queue_is_refused(
    clean_env: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    clean_env.setenv("SQS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs")
    engine = create_engine(sqlite_url)
    with pytest.raises(SettingsError, match="SQS_EVENTS_QUEUE_URL"):
        build_queues(load_settings(), engine)


def test_building_connects_to_nothing(clean_env: pytest.MonkeyPatch) -> None:
    # Unroutable endpoint and database: building must still succeed (start-up order).
    clean_env.setenv("SQS_QUEUE_URL", "http://127.0.0.1:9/123456789012/jobs")
    clean_env.setenv("SQS_EVENTS_QUEUE_URL", "http://127.0.0.1:9/123456789012/events")
    clean_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    queues = build_queues(load_settings(), engine)
    assert queues.jobs.name == "jobs"
    assert queues.events.name == "events"
