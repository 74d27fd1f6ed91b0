"""Outgoing webhooks against real loopback receivers: registration (the secret shown
once, one user's endpoints only, every SSRF spelling refused), signed deliveries,
retries with backoff until delivered or failed, 410 Gone, no redirects, the URL checked
again at delivery, and at-least-once delivery with a stable idempotency key."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from videoforge.gallery.lifecycle import delivery as lifecycle_delivery
from videoforge.gallery.webhooks import repository, signing
from videoforge.gallery.webhooks import service as webhook_service
from videoforge.gallery.webhooks.models import GalleryWebhook, GalleryWebhookDelivery
from videoforge.gallery.webhooks.service import SENDER_KEY, WebhookSender
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.infra.safe_http import FetchFailed

from .conftest import Users
from .webhook_receiver import Answer, Receiver

PUBLIC = "93.184.216.34"
METRICS_TOKEN = "scrape-token-for-tests"


def _processor_fetch_cases() -> Any:
    """The processor's SSRF test module, for its lists of refused spellings and addresses
    (one list for imports and webhooks)."""
    path = Path(__file__).parents[1] / "processor" / "fetch" / "test_fetch.py"
    spec = importlib.util.spec_from_file_location("processor_fetch_cases", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CASES = _processor_fetch_cases()


def _non_public_addresses() -> list[str]:
    (mark,) = [m for m in _CASES.test_non_public_addresses.pytestmark if m.name == "parametrize"]
    return list(mark.args[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A public endpoint, played by 127.0.0.2 (allowed exactly, as in the fetch tests)."""
    server = Receiver("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def blocked() -> Iterator[Receiver]:
    """The internal service an attacker wants to reach: never hit."""
    server = Receiver("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def settings_extra(receiver: Receiver, blocked: Receiver) -> dict[str, Any]:
    return {
        "WEBHOOK_ALLOWED_PORTS": f"80,443,{receiver.port},{blocked.port}",
        "WEBHOOK_TIMEOUT": 0.5,
        # A fast clock for retries: milliseconds instead of minutes, a budget of two seconds.
        "WEBHOOK_RETRY_BASE_SECONDS": 0.02,
        "WEBHOOK_RETRY_MAX_SECONDS": 0.05,
        "WEBHOOK_RETRY_BUDGET_SECONDS": 2.0,
        "METRICS_TOKEN": METRICS_TOKEN,
    }


@pytest.fixture
def dns(infra: Infra) -> dict[str, list[str]]:
    """The names webhook URLs resolve to (edit it to change DNS between checks)."""
    table = {
        "hooks.example": ["127.0.0.2"],
        "localhost": ["127.0.0.1"],
        "public.example": ["127.0.0.1"],
        "mixed.example": [PUBLIC, "127.0.0.1"],
        "metadata.example": ["169.254.169.254"],
    }

    async def resolve(host: str, port: int) -> list[str]:
        if host == "slow.example":
            await asyncio.sleep(30)  # a name server that never answers
        if host not in table:
            raise FetchFailed("dns_error", f"Could not resolve {host}.")
        return list(table[host])

    infra.extras[SENDER_KEY] = WebhookSender(resolver=resolve, allow_addresses=("127.0.0.2",))
    return table


async def register(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    url: str,
    events: list[str] | None = None,
) -> dict[str, Any]:
    r = await client.post(
        "/api/gallery/webhooks",
        json={"url": url, "events": events or ["video.created", "video.deleted"]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliveries(
    client: httpx.AsyncClient, headers: dict[str, str], webhook_id: str
) -> list[dict[str, Any]]:
    r = await client.get(f"/api/gallery/webhooks/{webhook_id}/deliveries", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def run_until(
    infra: Infra,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    webhook_id: str,
    state: str,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Run the delivery loop's rounds until the newest delivery reaches ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await lifecycle_delivery.run_once(infra)
        log = await deliveries(client, headers, webhook_id)
        if log and log[0]["state"] == state:
            return log[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no delivery reached {state}: {log}")


def assert_signed(received: Any, secret: str) -> dict[str, Any]:
    """The receiver's check, written out as docs/operations.md tells receivers to do it."""
    header = received.headers["videoforge-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    assert abs(time.time() - timestamp) < 60
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    body = json.loads(received.body)
    assert received.headers["videoforge-event-id"] == body["id"]
    assert received.headers["videoforge-event-type"] == body["type"]
    assert received.headers["content-type"] == "application/json"
    assert set(body) == {"id", "type", "created_at", "data"}
    return dict(body)


async def queue_test_event(
    client: httpx.AsyncClient, headers: dict[str, str], receiver: Receiver
) -> dict[str, Any]:
    """A new endpoint at ``receiver`` with a test event queued for it; the endpoint."""
    created = await register(client, headers, f"http://hooks.example:{receiver.port}/in")
    sent = await client.post(f"/api/gallery/webhooks/{created['id']}/test", headers=headers)
    assert sent.status_code == 202, sent.text
    return created


# ------------------------------------------------------------------ registration
async def test_the_secret_is_shown_once_and_endpoints_are_the_owners_alone(
    client: httpx.AsyncClient, users: Users, dns: dict[str, list[str]], receiver: Receiver
) -> None:
    created = await register(client, users.owner, f"http://hooks.example:{receiver.port}/in")
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    assert created["events"] == ["video.created", "video.deleted"]
    assert created["enabled"]
    hook = f"/api/gallery/webhooks/{created['id']}"

    read = (await client.get(hook, headers=users.owner)).json()
    assert "secret" not in read
    assert read["url"] == created["url"]
    listed = (await client.get("/api/gallery/webhooks", headers=users.owner)).json()["items"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert (await client.get("/api/gallery/webhooks", headers=users.other)).json()["items"] == []

    for method, path in [
        ("GET", hook),
        ("PATCH", hook),
        ("DELETE", hook),
        ("GET", f"{hook}/deliveries"),
        ("POST", f"{hook}/test"),
    ]:
        kwargs: dict[str, Any] = {"json": {"enabled": False}} if method == "PATCH" else {}
        r = await client.request(method, path, headers=users.other, **kwargs)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == "webhook_not_found"
    assert (await client.get(hook)).status_code == 401

    r = await client.patch(hook, json={"events": ["video.ready"]}, headers=users.owner)
    assert r.status_code == 200
    assert r.json()["events"] == ["video.ready"]
    assert (await client.delete(hook, headers=users.owner)).status_code == 204
    assert (await client.get(hook, headers=users.owner)).status_code == 404


async def test_the_same_endpoints_answer_at_api_webhooks(
    client: httpx.AsyncClient, users: Users, dns: dict[str, list[str]], receiver: Receiver
) -> None:
    """``/api/webhooks`` is the same API as ``/api/gallery/webhooks`` (one set of rows),
    with the same rules, and only the latter is in the OpenAPI document."""
    r = await client.post(
        "/api/webhooks",
        json={"url": f"http://hooks.example:{receiver.port}/in", "events": ["video.ready"]},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_")
    listed = (await client.get("/api/gallery/webhooks", headers=users.owner)).json()["items"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert (await client.get("/api/webhooks", headers=users.other)).json()["items"] == []
    hook = f"/api/webhooks/{created['id']}"
    assert (await client.get(hook)).status_code == 401
    assert (await client.get(hook, headers=users.other)).status_code == 404
    r = await client.patch(hook, json={"events": ["video.failed"]}, headers=users.owner)
    assert r.json()["events"] == ["video.failed"]
    assert (await client.get(f"{hook}/deliveries", headers=users.owner)).status_code == 200
    assert (await client.delete(hook, headers=users.owner)).status_code == 204
    assert (
        await client.get(f"/api/gallery/webhooks/{created['id']}", headers=users.owner)
    ).status_code == 404
    paths = (await client.get("/api/gallery/openapi.json")).json()["paths"]
    assert "/api/gallery/webhooks" in paths
    assert not any(path.startswith("/api/webhooks") for path in paths)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://hooks.example/", "events": []}, "validation_error"),
        ({"url": "http://hooks.example/", "events": ["webhook.test"]}, "validation_error"),
        ({"url": "http://hooks.example/", "events": ["video.exploded"]}, "validation_error"),
        ({"url": "http://hooks.example/"}, "validation_error"),
        ({"url": "ftp://hooks.example/", "events": ["video.ready"]}, "invalid_webhook_url"),
        ({"url": "http://a:b@hooks.example/", "events": ["video.ready"]}, "invalid_webhook_url"),
        ({"url": "http://hooks.example:22/", "events": ["video.ready"]}, "invalid_webhook_url"),
        ({"url": "http://nowhere.example/", "events": ["video.ready"]}, "invalid_webhook_url"),
        ({"url": "not a url", "events": ["video.ready"]}, "invalid_webhook_url"),
        ({"url": "http://x/" + "a" * 3000, "events": ["video.ready"]}, "validation_error"),
    ],
)
async def test_bad_registrations_are_422_with_a_stable_code(
    client: httpx.AsyncClient,
    users: Users,
    dns: dict[str, list[str]],
    body: dict[str, Any],
    code: str,
) -> None:
    r = await client.post("/api/gallery/webhooks", json=body, headers=users.owner)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


async def test_a_name_that_never_resolves_is_refused_in_bounded_time(
    client: httpx.AsyncClient, users: Users, dns: dict[str, list[str]]
) -> None:
    started = time.monotonic()
    r = await client.post(
        "/api/gallery/webhooks",
        json={"url": "http://slow.example/", "events": ["video.ready"]},
        headers=users.owner,
    )
    assert time.monotonic() - started < 5  # WEBHOOK_TIMEOUT (0.5 s), not the resolver's 30
    assert r.status_code == 422
    assert r.json()["error"]["details"]["reason"] == "dns_timeout"


async def test_every_ssrf_variant_is_refused_as_a_webhook_url(
    client: httpx.AsyncClient, users: Users, dns: dict[str, list[str]], blocked: Receiver
) -> None:
    urls = list(_CASES.loopback_spellings(blocked.port))
    for address in _non_public_addresses():
        urls.append(f"http://[{address}]/" if ":" in address else f"http://{address}/")
    urls += ["http://metadata.example/latest/meta-data/", "http://[::ffff:a9fe:a9fe]/"]
    for url in urls:
        r = await client.post(
            "/api/gallery/webhooks",
            json={"url": url, "events": ["video.ready"]},
            headers=users.owner,
        )
        assert r.status_code == 422, url
        error = r.json()["error"]
        assert (error["code"], error["details"]["reason"]) == (
            "invalid_webhook_url",
            "blocked_address",
        ), url
    # A registered URL cannot be changed into one either.
    created = await register(client, users.owner, "http://hooks.example/")
    r = await client.patch(
        f"/api/gallery/webhooks/{created['id']}",
        json={"url": f"http://127.0.0.1:{blocked.port}/"},
        headers=users.owner,
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_webhook_url"
    assert blocked.requests == []


# ---------------------------------------------------------------------- delivery
async def test_a_test_event_is_signed_and_logged(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    created = await register(client, users.owner, f"http://hooks.example:{receiver.port}/in")
    r = await client.post(f"/api/gallery/webhooks/{created['id']}/test", headers=users.owner)
    assert r.status_code == 202, r.text
    sent = r.json()

    logged = await run_until(infra, client, users.owner, created["id"], "delivered")
    (received,) = receiver.requests
    assert received.path == "/in"
    assert received.headers["host"] == f"hooks.example:{receiver.port}"
    body = assert_signed(received, created["secret"])
    assert body["type"] == "webhook.test"
    assert body["id"] == sent["event_id"]
    assert body["data"]["webhook_id"] == created["id"]
    assert logged["event_id"] == sent["event_id"]
    assert logged["event_type"] == "webhook.test"
    assert (logged["attempts"], logged["last_status"], logged["last_error"]) == (1, 200, None)
    assert logged["next_attempt_at"] is None
    assert logged["delivered_at"] is not None

    # The library check receivers can copy: the same header verifies, a changed body or
    # a replay after the tolerance does not.
    header = received.headers["videoforge-signature"]
    assert signing.verify(created["secret"], header, received.body, now=time.time())
    assert not signing.verify(created["secret"], header, received.body + b" ", now=time.time())
    assert not signing.verify("whsec_other", header, received.body, now=time.time())
    assert not signing.verify(created["secret"], header, received.body, now=time.time() + 301)


async def test_fails_twice_then_delivered_after_three_attempts(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    receiver.script = [Answer(500), Answer(503)]
    created = await queue_test_event(client, users.owner, receiver)
    logged = await run_until(infra, client, users.owner, created["id"], "delivered")
    assert (logged["attempts"], logged["last_status"]) == (3, 200)
    assert len(receiver.requests) == 3
    ids = {r.headers["videoforge-event-id"] for r in receiver.requests}
    assert ids == {logged["event_id"]}  # one idempotency key across the retries
    for received in receiver.requests:
        assert_signed(received, created["secret"])


async def test_always_failing_is_marked_failed_after_the_retry_budget(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    receiver.script = [Answer(500) for _ in range(1000)]
    created = await queue_test_event(client, users.owner, receiver)
    started = time.monotonic()
    logged = await run_until(infra, client, users.owner, created["id"], "failed")
    assert time.monotonic() - started < 6  # the budget (2 s) ended it, not the test
    assert logged["attempts"] >= 3
    assert logged["attempts"] == len(receiver.requests)
    assert logged["last_status"] == 500
    assert logged["last_error"].startswith("HTTP 500")
    assert logged["next_attempt_at"] is None
    assert logged["delivered_at"] is None
    await lifecycle_delivery.run_once(infra)
    assert len(receiver.requests) == logged["attempts"]  # failed means no more attempts
    hook = (await client.get(f"/api/gallery/webhooks/{created['id']}", headers=users.owner)).json()
    assert hook["enabled"]  # failing deliveries do not disable an endpoint; 410 does


async def test_gone_fails_the_delivery_and_disables_the_endpoint(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    receiver.script = [Answer(410)]
    created = await queue_test_event(client, users.owner, receiver)
    logged = await run_until(infra, client, users.owner, created["id"], "failed")
    assert (logged["attempts"], logged["last_status"]) == (1, 410)
    path = f"/api/gallery/webhooks/{created['id']}"
    hook = (await client.get(path, headers=users.owner)).json()
    assert not hook["enabled"]
    assert "410" in hook["disabled_reason"]

    r = await client.patch(path, json={"enabled": True}, headers=users.owner)
    assert r.json()["enabled"]
    assert r.json()["disabled_reason"] is None


async def test_redirects_are_never_followed(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
    blocked: Receiver,
) -> None:
    receiver.script = [Answer(302, headers={"Location": f"{blocked.url}/admin"})]
    created = await queue_test_event(client, users.owner, receiver)
    await lifecycle_delivery.run_once(infra)
    (logged,) = await deliveries(client, users.owner, created["id"])
    assert (logged["state"], logged["attempts"], logged["last_status"]) == ("pending", 1, 302)
    assert len(receiver.requests) == 1
    assert blocked.requests == []


async def test_the_url_is_checked_again_at_delivery(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    blocked: Receiver,
) -> None:
    """Registered while its name was public; by delivery time the name points inside."""
    dns["rebind.example"] = ["127.0.0.2"]
    created = await register(client, users.owner, f"http://rebind.example:{blocked.port}/in")
    dns["rebind.example"] = ["127.0.0.1"]
    await client.post(f"/api/gallery/webhooks/{created['id']}/test", headers=users.owner)
    await lifecycle_delivery.run_once(infra)
    (logged,) = await deliveries(client, users.owner, created["id"])
    assert logged["state"] == "pending"
    assert logged["last_status"] is None
    assert logged["last_error"].startswith("blocked_address")
    assert blocked.requests == []


async def test_an_answer_lost_in_transit_means_a_second_delivery_with_the_same_id(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    # The receiver takes the first one but answers after the sender's timeout (0.5 s).
    receiver.script = [Answer(200, delay=1.0)]
    created = await queue_test_event(client, users.owner, receiver)
    logged = await run_until(infra, client, users.owner, created["id"], "delivered")
    assert logged["attempts"] == 2
    first, second = receiver.requests
    assert first.headers["videoforge-event-id"] == second.headers["videoforge-event-id"]
    assert first.body == second.body  # receivers deduplicate on the id


async def test_a_delivery_whose_sender_died_is_attempted_again(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    created = await register(client, users.owner, f"http://hooks.example:{receiver.port}/in")
    sent = (
        await client.post(f"/api/gallery/webhooks/{created['id']}/test", headers=users.owner)
    ).json()
    # A claim that was committed, and then the process died (no outcome recorded); its
    # lease has run out.
    async with session_scope(infra.sessions) as session:
        assert await repository.claim(
            session, sent["delivery_id"], now=utcnow(), lease_until=utcnow() - timedelta(seconds=1)
        )
    logged = await run_until(infra, client, users.owner, created["id"], "delivered")
    assert logged["attempts"] == 2
    assert len(receiver.requests) == 1


async def test_deleting_an_endpoint_deletes_its_log_and_stops_deliveries(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    created = await queue_test_event(client, users.owner, receiver)
    await client.delete(f"/api/gallery/webhooks/{created['id']}", headers=users.owner)
    await lifecycle_delivery.run_once(infra)
    assert receiver.requests == []
    async with infra.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(GalleryWebhookDelivery))
        hooks = await session.scalar(
            select(func.count())
            .select_from(GalleryWebhook)
            .where(GalleryWebhook.id == uuid.UUID(created["id"]))
        )
    assert (left, hooks) == (0, 0)


async def test_the_delivery_log_pages_newest_first(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    created = await register(client, users.owner, f"http://hooks.example:{receiver.port}/in")
    sent = [
        (
            await client.post(f"/api/gallery/webhooks/{created['id']}/test", headers=users.owner)
        ).json()["delivery_id"]
        for _ in range(3)
    ]
    path = f"/api/gallery/webhooks/{created['id']}/deliveries"
    first = (await client.get(path, params={"limit": 2}, headers=users.owner)).json()
    assert [d["id"] for d in first["items"]] == sent[::-1][:2]
    rest = (
        await client.get(
            path, params={"limit": 2, "before": first["next_before"]}, headers=users.owner
        )
    ).json()
    assert [d["id"] for d in rest["items"]] == [sent[0]]
    assert rest["next_before"] is None
    r = await client.get(path, params={"before": 0}, headers=users.owner)
    assert r.status_code == 422


# ------------------------------------------------------- redelivery and new secret
async def test_a_failed_delivery_is_sent_again_on_request_with_the_same_event_id(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    """A receiver down longer than the retry budget gets the event when its owner asks."""
    receiver.script = [Answer(503) for _ in range(1000)]
    created = await queue_test_event(client, users.owner, receiver)
    failed = await run_until(infra, client, users.owner, created["id"], "failed")
    attempts = failed["attempts"]
    receiver.script = []  # back up: 200 from now on
    received_before = len(receiver.requests)

    url = f"/api/gallery/webhooks/{created['id']}/deliveries/{failed['id']}/redeliver"
    r = await client.post(url, headers=users.owner)
    assert r.status_code == 202, r.text
    assert (r.json()["id"], r.json()["state"]) == (failed["id"], "pending")
    # Pending: asking again is refused, not a second send.
    again = await client.post(url, headers=users.owner)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "delivery_pending")

    logged = await run_until(infra, client, users.owner, created["id"], "delivered")
    assert logged["id"] == failed["id"]  # the same log row
    assert (logged["attempts"], logged["last_status"]) == (attempts + 1, 200)
    (sent,) = receiver.requests[received_before:]
    body = assert_signed(sent, created["secret"])
    assert body["id"] == failed["event_id"]  # the same idempotency key

    # A delivered one may be sent again too (a receiver that lost what it stored).
    r = await client.post(url, headers=users.owner)
    assert r.status_code == 202, r.text
    await run_until(infra, client, users.owner, created["id"], "delivered")
    assert len(receiver.requests) == received_before + 2

    # Only the owner, only this endpoint's deliveries, only while enabled.
    stranger = await client.post(url, headers=users.other)
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "webhook_not_found")
    other = await register(client, users.owner, f"http://hooks.example:{receiver.port}/b")
    wrong = f"/api/gallery/webhooks/{other['id']}/deliveries/{failed['id']}/redeliver"
    missing = await client.post(wrong, headers=users.owner)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "delivery_not_found")
    bad = await client.post(
        f"/api/gallery/webhooks/{created['id']}/deliveries/0/redeliver", headers=users.owner
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "validation_error")
    await client.patch(
        f"/api/gallery/webhooks/{created['id']}", json={"enabled": False}, headers=users.owner
    )
    off = await client.post(url, headers=users.owner)
    assert (off.status_code, off.json()["error"]["code"]) == (409, "webhook_disabled")


async def test_a_new_secret_is_shown_once_and_signs_every_attempt_from_then_on(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    receiver.script = [Answer(500)]
    created = await queue_test_event(client, users.owner, receiver)
    await lifecycle_delivery.run_once(infra)  # the first attempt: 500, signed the old way
    (first,) = receiver.requests
    assert_signed(first, created["secret"])

    r = await client.post(f"/api/gallery/webhooks/{created['id']}/secret", headers=users.owner)
    assert r.status_code == 200, r.text
    fresh = r.json()["secret"]
    assert fresh.startswith("whsec_")
    assert fresh != created["secret"]
    shown = await client.get(f"/api/gallery/webhooks/{created['id']}", headers=users.owner)
    assert fresh not in shown.text
    stranger = await client.post(
        f"/api/gallery/webhooks/{created['id']}/secret", headers=users.other
    )
    assert stranger.status_code == 404

    # The retry of the older event is signed with the new secret alone.
    await run_until(infra, client, users.owner, created["id"], "delivered")
    retry = receiver.requests[-1]
    assert_signed(retry, fresh)
    header = retry.headers["videoforge-signature"]
    assert not signing.verify(created["secret"], header, retry.body, now=time.time())


async def test_one_endpoints_backlog_takes_only_its_share_of_a_round(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    """Ten deliveries due at one endpoint (older) and one at another: a round attempts
    two of the ten and the other's, so a receiver that never answers (each attempt up to
    WEBHOOK_TIMEOUT) cannot hold up everyone else's deliveries for its whole backlog."""
    busy = await register(client, users.owner, f"http://hooks.example:{receiver.port}/busy")
    for _ in range(10):
        await client.post(f"/api/gallery/webhooks/{busy['id']}/test", headers=users.owner)
    quiet = await register(client, users.other, f"http://hooks.example:{receiver.port}/quiet")
    await client.post(f"/api/gallery/webhooks/{quiet['id']}/test", headers=users.other)

    async def attempted() -> dict[str, int]:
        """Deliveries attempted at least once, per endpoint (what was claimed: an
        attempt that timed out on a loaded machine counts too)."""
        async with infra.sessions() as session:
            rows = await session.execute(
                select(GalleryWebhookDelivery.webhook_id, func.count())
                .where(GalleryWebhookDelivery.attempts > 0)
                .group_by(GalleryWebhookDelivery.webhook_id)
            )
        names = {uuid.UUID(busy["id"]): "busy", uuid.UUID(quiet["id"]): "quiet"}
        return {names[hook]: count for hook, count in rows.all()}

    assert await webhook_service.deliver_due(infra) == 3
    assert await attempted() == {"busy": 2, "quiet": 1}
    # The rest of the backlog follows, two a round (and a retry of the other's, should
    # its attempt have timed out on a loaded machine).
    for _ in range(30):
        if await attempted() == {"busy": 10, "quiet": 1}:
            break
        assert await webhook_service.deliver_due(infra) <= 3
    assert await attempted() == {"busy": 10, "quiet": 1}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_show_what_is_pending_and_how_attempts_end(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    dns: dict[str, list[str]],
    receiver: Receiver,
) -> None:
    """An operator's alarms: events waiting for the fan-out (and how long the oldest has
    waited), deliveries by state, attempts by outcome."""

    async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200, r.text
        return _samples(r.text)

    fan_out = ("videoforge_lifecycle_events_pending", (("step", "fan_out"),))
    oldest = ("videoforge_lifecycle_oldest_pending_seconds", (("step", "fan_out"),))
    delivered_attempts = ("videoforge_webhook_attempts_total", (("outcome", "delivered"),))
    retries = ("videoforge_webhook_attempts_total", (("outcome", "retry"),))
    before = await scrape()

    receiver.script = [Answer(500)]
    created = await register(
        client, users.owner, f"http://hooks.example:{receiver.port}/in", ["video.created"]
    )
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "Counted", "source_url": "https://example.com/a.mp4"},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    await asyncio.sleep(1.1)
    waiting = await scrape()
    assert waiting[fan_out] == 1
    assert waiting[oldest] >= 1.0
    assert waiting[("videoforge_lifecycle_events_pending", (("step", "eventbridge"),))] == 0

    await run_until(infra, client, users.owner, created["id"], "delivered")
    after = await scrape()
    assert after[fan_out] == 0
    assert after[oldest] == 0
    assert after[("videoforge_webhook_deliveries", (("state", "delivered"),))] == 1
    assert after[("videoforge_webhook_deliveries", (("state", "pending"),))] == 0
    assert after[retries] - before.get(retries, 0) == 1  # the 500
    assert after[delivered_attempts] - before.get(delivered_attempts, 0) == 1
