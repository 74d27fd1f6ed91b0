"""Local accounts' mail against a real SMTP server on loopback (aiosmtpd): password
reset, sign-up confirmation, resend, address change; and the .eml files written when no
SMTP server is configured."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from videoforge.gateway.accounts.models import AccountToken
from videoforge.infra.db import session_scope, utcnow

from .conftest import DEFAULT_PASSWORD, Gateway, GatewayFactory, free_port, make_settings

NEW_PASSWORD = "purple tractor 77 rain"
LINK = re.compile(r"(https?://\S+?/(reset|confirm-email)\?token=([A-Za-z0-9_\-%]+))")


class Inbox:
    """What the loopback SMTP server received (aiosmtpd calls it from its own thread)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 10) -> EmailMessage:
        for _ in range(int(timeout / 0.05)):
            found = self.to(address)
            if len(found) >= count:
                return found[count - 1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail #{count} to {address}; got {len(self.to(address))}")


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage) -> tuple[str, str]:
    """(the link, its token) in a mail."""
    match = LINK.search(body_of(message))
    assert match, body_of(message)
    return match.group(1), match.group(3)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def gw(
    make_gateway: GatewayFactory, tmp_path: Path, database_url: str, smtp: tuple[Inbox, int]
) -> Gateway:
    _, port = smtp
    settings = make_settings(
        tmp_path,
        database_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        MAIL_FROM="VideoForge <noreply@videos.example>",
        PUBLIC_URL="https://videos.example",
    )
    assert settings.confirms_email  # auto: on, since SMTP is configured
    return await make_gateway(settings)


async def _signup_and_confirm(gw: Gateway, inbox: Inbox, address: str) -> None:
    signup = await gw.client.post(
        "/api/auth/signup", json={"email": address, "password": DEFAULT_PASSWORD}
    )
    assert signup.status_code == 201, signup.text
    assert signup.json()["confirmation_required"] is True
    assert signup.json()["access_token"] is None
    assert signup.json()["confirmation"] == "link"
    link, token = link_in(await inbox.wait_for(address))
    assert link.startswith("https://videos.example/confirm-email?token=")
    confirmed = await gw.client.post("/api/auth/confirm", json={"token": token})
    assert confirmed.status_code == 200, confirmed.text


async def _login(gw: Gateway, address: str, password: str) -> Any:
    return await gw.client.post("/api/auth/login", json={"email": address, "password": password})


async def test_forgot_mail_reset_then_log_in_and_the_link_works_once(
    gw: Gateway, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await _signup_and_confirm(gw, inbox, "rita@example.com")
    session = (await _login(gw, "rita@example.com", DEFAULT_PASSWORD)).json()

    forgot = await gw.client.post("/api/auth/password/forgot", json={"email": "Rita@Example.com"})
    assert forgot.status_code == 202
    mail = await inbox.wait_for("rita@example.com", count=2)
    assert mail["From"] == "VideoForge <noreply@videos.example>"
    link, token = link_in(mail)
    assert link.startswith("https://videos.example/reset?token=")

    # The existing password rules apply, and a refused password does not use the link up.
    weak = await gw.client.post(
        "/api/auth/password/reset", json={"token": token, "password": "password1"}
    )
    assert weak.status_code == 422
    assert weak.json()["error"]["code"] == "weak_password"

    reset = await gw.client.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text
    assert (await _login(gw, "rita@example.com", DEFAULT_PASSWORD)).status_code == 401
    assert (await _login(gw, "rita@example.com", NEW_PASSWORD)).status_code == 200
    # Every earlier session ended.
    refreshed = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert refreshed.status_code == 401
    # The owner is told, and the link is single use.
    notice = await inbox.wait_for("rita@example.com", count=3)
    assert "was just reset" in body_of(notice)
    again = await gw.client.post(
        "/api/auth/password/reset", json={"token": token, "password": "another fine 99 pass"}
    )
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "token_used"
    forged = await gw.client.post(
        "/api/auth/password/reset", json={"token": "x" * 43, "password": NEW_PASSWORD}
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "token_invalid"


async def test_an_expired_reset_link_is_refused(gw: Gateway, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    await _signup_and_confirm(gw, inbox, "old@example.com")
    await gw.client.post("/api/auth/password/forgot", json={"email": "old@example.com"})
    _, token = link_in(await inbox.wait_for("old@example.com", count=2))
    async with session_scope(gw.infra.sessions) as session:
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    reset = await gw.client.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert reset.status_code == 410
    assert reset.json()["error"]["code"] == "token_expired"
    assert (await _login(gw, "old@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_forgot_answers_the_same_for_an_unknown_address_and_mails_nothing(
    gw: Gateway, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await _signup_and_confirm(gw, inbox, "known@example.com")
    known = await gw.client.post("/api/auth/password/forgot", json={"email": "known@example.com"})
    unknown = await gw.client.post(
        "/api/auth/password/forgot", json={"email": "nobody@example.com"}
    )
    odd = await gw.client.post("/api/auth/password/forgot", json={"email": "not an address"})
    assert known.status_code == unknown.status_code == odd.status_code == 202
    assert known.json() == unknown.json() == odd.json()
    await inbox.wait_for("known@example.com", count=2)
    assert gw.app.state.gateway.mail is not None
    await gw.app.state.gateway.mail.drain()
    assert inbox.to("nobody@example.com") == []


async def test_unconfirmed_accounts_cannot_log_in_until_confirmed_and_resend_works(
    gw: Gateway, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    signup = await gw.client.post(
        "/api/auth/signup", json={"email": "new@example.com", "password": DEFAULT_PASSWORD}
    )
    assert signup.status_code == 201
    first = await inbox.wait_for("new@example.com")
    refused = await _login(gw, "new@example.com", DEFAULT_PASSWORD)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "email_not_confirmed"
    # A wrong password is still just wrong: the refusal tells nothing without it.
    assert (await _login(gw, "new@example.com", "wrong password 1")).status_code == 401

    resend = await gw.client.post("/api/auth/confirm/resend", json={"email": "new@example.com"})
    assert resend.status_code == 202
    _, token = link_in(await inbox.wait_for("new@example.com", count=2))
    # Only the newest link counts.
    _, stale = link_in(first)
    assert (await gw.client.post("/api/auth/confirm", json={"token": stale})).status_code == 410
    assert (await gw.client.post("/api/auth/confirm", json={"token": token})).status_code == 200
    assert (await _login(gw, "new@example.com", DEFAULT_PASSWORD)).status_code == 200
    reused = await gw.client.post("/api/auth/confirm", json={"token": token})
    assert reused.json()["error"]["code"] == "token_used"


async def test_signup_with_a_registered_address_answers_like_a_new_one_and_mails_the_owner(
    gw: Gateway, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await _signup_and_confirm(gw, inbox, "owner@example.com")
    again = await gw.client.post(
        "/api/auth/signup", json={"email": "owner@example.com", "password": "another fine 99 pass"}
    )
    fresh = await gw.client.post(
        "/api/auth/signup", json={"email": "fresh@example.com", "password": "another fine 99 pass"}
    )
    assert again.status_code == fresh.status_code == 201
    shape = {k: v for k, v in again.json().items() if k != "user"}
    assert shape == {k: v for k, v in fresh.json().items() if k != "user"}
    assert again.json()["user"].keys() == fresh.json()["user"].keys()
    notice = await inbox.wait_for("owner@example.com", count=2)
    assert "already has one" in body_of(notice)
    assert "token=" not in body_of(notice)
    # The owner's password did not change.
    assert (await _login(gw, "owner@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_display_name_and_address_change_confirmed_by_the_new_address(
    gw: Gateway, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await _signup_and_confirm(gw, inbox, "move@example.com")
    tokens = (await _login(gw, "move@example.com", DEFAULT_PASSWORD)).json()
    auth = gw.bearer(tokens["access_token"])

    named = await gw.client.patch("/api/auth/me", json={"display_name": "Mover"}, headers=auth)
    assert named.status_code == 200, named.text
    assert named.json()["display_name"] == "Mover"
    nul = await gw.client.patch("/api/auth/me", json={"display_name": "a\x00b"}, headers=auth)
    assert nul.status_code == 422

    no_password = await gw.client.patch(
        "/api/auth/me", json={"email": "moved@example.com"}, headers=auth
    )
    assert no_password.status_code == 401
    changed = await gw.client.patch(
        "/api/auth/me",
        json={"email": "moved@example.com", "current_password": DEFAULT_PASSWORD},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "move@example.com"  # not until confirmed
    assert changed.json()["pending_email"] == "moved@example.com"
    _, token = link_in(await inbox.wait_for("moved@example.com"))
    assert (await gw.client.post("/api/auth/confirm", json={"token": token})).status_code == 200
    assert (await _login(gw, "moved@example.com", DEFAULT_PASSWORD)).status_code == 200
    assert (await _login(gw, "move@example.com", DEFAULT_PASSWORD)).status_code == 401
    told = await inbox.wait_for("move@example.com", count=2)
    assert "moved@example.com" in body_of(told)


async def test_forgot_is_rate_limited_per_address(gw: Gateway) -> None:
    answers = [
        (await gw.client.post("/api/auth/password/forgot", json={"email": "x@example.com"}))
        for _ in range(6)
    ]
    assert [a.status_code for a in answers[:5]] == [202] * 5
    assert answers[5].status_code == 429
    assert answers[5].json()["error"]["code"] == "rate_limited"
    assert "retry-after" in answers[5].headers
    await gw.app.state.gateway.mail.drain()  # the five lookups, before the server stops


async def test_without_smtp_mail_is_written_to_the_data_directory(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    assert not settings.confirms_email  # auto without SMTP: off
    gw = await make_gateway(settings)
    await gw.signup("solo@example.com")
    forgot = await gw.client.post("/api/auth/password/forgot", json={"email": "solo@example.com"})
    assert forgot.status_code == 202
    await gw.app.state.gateway.mail.drain()
    files = sorted(settings.mail_dir.glob("*.eml"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o077 == 0  # the operator's eyes only
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    link, token = link_in(message)
    assert link.startswith(gw.url + "/reset?token=")  # loopback: the request's own base URL
    reset = await gw.client.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert reset.status_code == 200
    assert (await _login(gw, "solo@example.com", NEW_PASSWORD)).status_code == 200


async def test_an_address_change_to_a_taken_address_answers_the_same_and_tells_its_owner(
    gw: Gateway, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await _signup_and_confirm(gw, inbox, "holder@example.com")
    await _signup_and_confirm(gw, inbox, "mover@example.com")
    tokens = (await _login(gw, "mover@example.com", DEFAULT_PASSWORD)).json()
    auth = gw.bearer(tokens["access_token"])
    taken = await gw.client.patch(
        "/api/auth/me",
        json={"email": "holder@example.com", "current_password": DEFAULT_PASSWORD},
        headers=auth,
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["pending_email"] == "holder@example.com"
    me = (await gw.client.get("/api/auth/me", headers=auth)).json()
    assert me["pending_email"] == "holder@example.com"
    notice = await inbox.wait_for("holder@example.com", count=2)
    assert "already has an account" in body_of(notice)
    assert "token=" not in body_of(notice)
    assert (await _login(gw, "mover@example.com", DEFAULT_PASSWORD)).status_code == 200
