"""Tracing: off unless configured; on, one trace follows a video from the upload-URL
request through confirm, job creation, the queue message, the worker's steps (each
ffmpeg and ffprobe run a span with its wall time) and the gallery's application of
the job's events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from videoforge.infra import tracing
from videoforge.infra.queue.sqs import _to_message

FLOW = Path(__file__).with_name("tracing_flow.py")

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask(env: dict[str, str], on: bool) -> None:
    assert tracing.requested(env) is on


def test_off_it_carries_nothing_and_opens_only_no_op_spans() -> None:
    assert not tracing.enabled()  # no test process turns it on: the flow runs apart
    assert tracing.inject() == {}
    with tracing.span("anything") as span:
        assert not span.is_recording()
    with tracing.consumer_span(
        "job", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    ) as s:
        assert not s.is_recording()


def test_sqs_message_attributes_are_read_back() -> None:
    raw: Any = {
        "MessageId": "m",
        "Body": "{}",
        "ReceiptHandle": "r",
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {"traceparent": {"DataType": "String", "StringValue": "00-ab-cd-01"}},
    }
    assert _to_message(raw).attributes == {"traceparent": "00-ab-cd-01"}


def _sqs_queues(moto_endpoint: str) -> dict[str, str]:
    """SQS job and event queues on moto, as the settings name them."""
    import asyncio
    import uuid

    import boto3

    from videoforge.infra.queue.sqs import ensure_sqs_queues

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    unique = uuid.uuid4().hex[:10]
    jobs, _ = asyncio.run(ensure_sqs_queues(sqs, f"traced-jobs-{unique}", 5, 60))
    events, _ = asyncio.run(ensure_sqs_queues(sqs, f"traced-events-{unique}", 10, 30))
    return {
        "SQS_QUEUE_URL": jobs,
        "SQS_EVENTS_QUEUE_URL": events,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture(scope="module", params=["database", "sqs"])
def flow(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The flow's spans and JSON log lines (run in a process of its own), with the job
    and event queues in the database (embedded) or on SQS (moto)."""
    queues = _sqs_queues(request.getfixturevalue("moto_endpoint")) if request.param == "sqs" else {}
    tmp = tmp_path_factory.mktemp("tracing")
    clip = tmp / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i", "sine=duration=1", "-t", "1",
         "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
         "-shortest", str(clip)],
        check=True,
    )  # fmt: skip
    data = tmp / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | queues
    done = subprocess.run(
        [sys.executable, str(FLOW), str(data), str(clip)],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    spans = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("SPAN ")]
    logs = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    return spans, logs


def _children(
    by_id: dict[str, dict[str, Any]], parent: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The spans whose parent is ``parent``, by name."""
    return {s["name"]: s for s in by_id.values() if s["parent_id"] == parent["span_id"]}


def _tree(spans: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    (root,) = [s for s in spans if s["name"] == "client: publish a video"]
    return root, {s["span_id"]: s for s in spans if s["trace_id"] == root["trace_id"]}


def _ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    names = []
    while span["parent_id"] in by_id:
        span = by_id[span["parent_id"]]
        names.append(span["name"])
    return names


def test_one_trace_from_the_upload_url_to_the_ready_video(
    flow: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    spans, _ = flow
    root, in_trace = _tree(spans)
    names = [s["name"] for s in in_trace.values()]
    for request in (
        "POST /api/upload/url",
        "POST /storage/upload",
        "POST /api/upload/confirm",
        "POST /api/jobs",
    ):
        assert request in names, names
    # Every span of the trace hangs from the client's span.
    for span in in_trace.values():
        if span is not root:
            assert "client: publish a video" in _ancestors(span, in_trace), span["name"]
    # The gateway asked the gallery over HTTP: the call and the gallery's server span.
    (check,) = [s for s in in_trace.values() if s["name"] == "GET /api/gallery/videos/{video_id}"]
    assert _ancestors(check, in_trace)[:2] == ["GET", "POST /api/jobs"]


def test_the_worker_continues_the_trace_of_the_job_creation(
    flow: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    spans, _ = flow
    _, in_trace = _tree(spans)
    (job,) = [s for s in in_trace.values() if s["name"] == "process job"]
    assert job["kind"] == "CONSUMER"
    # Carried by the queue message alone: the worker handled it outside any request.
    assert "POST /api/jobs" in _ancestors(job, in_trace)
    steps = _children(in_trace, job)
    assert {"download", "transcode", "upload"} <= set(steps)
    # The media steps, each with its tool's run (and wall time) under it.
    media = _children(in_trace, steps["transcode"])
    assert {"probe", "ladder", "stills"} <= set(media), sorted(media)
    for step, tool in (("probe", "ffprobe"), ("ladder", "ffmpeg"), ("stills", "ffmpeg")):
        (run,) = _children(in_trace, media[step]).values()
        assert run["name"] == tool
        assert float(run["attributes"]["videoforge.wall_seconds"]) > 0, run
        assert run["attributes"]["process.exit.code"] == "0", run
    assert media["ladder"]["attributes"]["renditions"] != "0"
    # The gallery applied the job's events inside the same trace.
    applied = [s for s in in_trace.values() if s["name"] == "apply job event"]
    assert len(applied) >= 3
    assert all("process job" in _ancestors(s, in_trace) for s in applied)
    # And the SQL of it all is there too.
    assert any(s["name"].startswith("UPDATE") for s in in_trace.values())


def test_log_lines_carry_the_trace_and_span_ids(
    flow: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    spans, logs = flow
    root, in_trace = _tree(spans)
    (completed,) = [line for line in logs if line.get("event") == "job_completed"]
    assert completed["trace_id"] == root["trace_id"]
    assert completed["span_id"] in in_trace


def test_the_queue_backend_carried_the_trace(
    request: pytest.FixtureRequest,
    flow: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """On SQS the job message was sent by the job creation through SQS itself (the
    botocore span), and the worker's span still continues it."""
    spans, _ = flow
    _, in_trace = _tree(spans)
    sends = [s for s in in_trace.values() if s["name"] == "SQS.SendMessage"]
    if request.node.callspec.params["flow"] == "sqs":
        assert sends, sorted({s["name"] for s in in_trace.values()})
        assert any("POST /api/jobs" in _ancestors(s, in_trace) for s in sends)
    else:
        assert not sends
