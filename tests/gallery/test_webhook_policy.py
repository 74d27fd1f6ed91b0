"""The webhook retry decision and the signature, as pure functions (unit tier)."""

from __future__ import annotations

import random

import pytest

from videoforge.gallery.webhooks import signing
from videoforge.gallery.webhooks.models import DeliveryState
from videoforge.gallery.webhooks.service import RetryPolicy, decide, retry_delay

POLICY = RetryPolicy(base=30, cap=3600, budget=86400)


@pytest.mark.parametrize(
    ("status", "state", "disable"),
    [
        (200, DeliveryState.DELIVERED, False),
        (204, DeliveryState.DELIVERED, False),
        (299, DeliveryState.DELIVERED, False),
        (410, DeliveryState.FAILED, True),
        (301, DeliveryState.PENDING, False),  # redirects are not followed, so not delivered
        (400, DeliveryState.PENDING, False),
        (404, DeliveryState.PENDING, False),
        (429, DeliveryState.PENDING, False),
        (500, DeliveryState.PENDING, False),
        (None, DeliveryState.PENDING, False),  # no answer: refused, connection error, timeout
    ],
)
def test_what_an_answer_means(status: int | None, state: DeliveryState, disable: bool) -> None:
    decision = decide(status, 1, 0.0, POLICY)
    assert (decision.state, decision.disable_endpoint) == (state, disable)
    assert (decision.retry_in is not None) == (state is DeliveryState.PENDING)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (5, 480), (8, 3600), (60, 3600)]:
        delays = [retry_delay(attempts, POLICY, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempts
        assert len({round(d, 6) for d in delays}) > 100  # jittered, not one instant for all


def test_the_budget_ends_retries() -> None:
    assert decide(500, 10, 86400 - 4000, POLICY).state is DeliveryState.PENDING
    assert decide(500, 10, 86400 - 1, POLICY).state is DeliveryState.FAILED
    failed = decide(None, 30, 90000, POLICY)
    assert (failed.state, failed.retry_in, failed.disable_endpoint) == (
        DeliveryState.FAILED,
        None,
        False,
    )


def test_signature_verification() -> None:
    secret = signing.new_secret()
    body = b'{"id":"x"}'
    header = signing.signature_header(secret, 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert signing.verify(secret, header, body, now=1_700_000_100)
    assert signing.verify(secret, header, body, now=1_699_999_800)
    assert not signing.verify(secret, header, body, now=1_700_000_301)  # a replay, too late
    assert not signing.verify(secret, header, body + b"x", now=1_700_000_000)
    assert not signing.verify(secret + "x", header, body, now=1_700_000_000)
    assert not signing.verify(secret, "v1=" + header.split("v1=")[1], body, now=1_700_000_000)
    # A moved timestamp breaks the signature (it is signed with the body).
    moved = header.replace("t=1700000000", "t=1700000200")
    assert not signing.verify(secret, moved, body, now=1_700_000_200)
    # Several v1 values (a rotation) pass when one matches.
    assert signing.verify(secret, header + ",v1=deadbeef", body, now=1_700_000_000)


def test_the_verification_snippet_in_the_operations_guide_works() -> None:
    """docs/operations.md gives receivers a verify(); it must accept what we sign and
    refuse tampering and replays."""
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = doc[doc.index("## 10. Events for integrations") :]
    snippet = section[section.index("```python") + len("```python") :]
    snippet = snippet[: snippet.index("```")]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "operations.md", "exec"), namespace)  # noqa: S102 - our own doc
    verify = namespace["verify"]
    assert callable(verify)

    secret = signing.new_secret()
    body = b'{"id":"e1","type":"video.ready"}'
    now = 1_800_000_000
    header = signing.signature_header(secret, now, body)
    assert verify(secret, header, body, now + 299)
    assert not verify(secret, header, body, now + 301)
    assert not verify(secret, header, body + b"\n", now)
    assert not verify("whsec_wrong", header, body, now)
    assert not verify(secret, "v1=" + header.split("v1=")[1], body, now)


def test_settings_of_events_for_integrations() -> None:
    from videoforge.gallery.lifecycle.eventbridge import EventBridgePublisher
    from videoforge.settings import load_settings

    settings = load_settings(WEBHOOK_ALLOWED_PORTS="80, 8443", EVENTBRIDGE_BUS_NAME="")
    assert settings.webhook_allowed_ports == [80, 8443]
    assert EventBridgePublisher.from_settings(settings) is None  # empty means no bus
    assert RetryPolicy.from_settings(settings) == RetryPolicy(base=30, cap=3600, budget=86400)
