"""The mail transports against a real SMTP server on loopback (aiosmtpd): log-in, a
required STARTTLS that the server does not offer, and answers that never wait for a
slow server (the reset answer's timing must not tell whether mail went out)."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from videoforge.gateway.accounts.mail import Mail, SmtpMailer, build_mailer
from videoforge.settings import Settings

from .conftest import DEFAULT_PASSWORD, GatewayFactory, free_port, make_settings


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)  # a slow server
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,  # loopback only; TLS is the operator's SMTP_* choice
    )
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def _settings(tmp_path: Path, port: int, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        VIDEOFORGE_DATA_DIR=str(tmp_path),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        MAIL_FROM="Site <site@example.com>",
        **extra,
    )


async def test_smtp_with_login(tmp_path: Path, smtp_server: tuple[Recorder, int]) -> None:
    recorder, port = smtp_server
    mailer = build_mailer(_settings(tmp_path, port, SMTP_USER="mailer", SMTP_PASSWORD="s3cret"))
    assert isinstance(mailer, SmtpMailer)
    await mailer.send(Mail(to="a@example.com", subject="Hi", text="Hello"))
    assert recorder.received == [("site@example.com", ["a@example.com"])]


async def test_required_starttls_is_not_skipped(
    tmp_path: Path, smtp_server: tuple[Recorder, int]
) -> None:
    recorder, port = smtp_server
    mailer = build_mailer(_settings(tmp_path, port, SMTP_STARTTLS="true"))
    with pytest.raises(smtplib.SMTPNotSupportedError, match="STARTTLS"):
        await mailer.send(Mail(to="a@example.com", subject="Hi", text="Hello"))
    assert recorder.received == []


def test_confirmation_setting() -> None:
    def confirms(**values: Any) -> bool:
        return Settings(_env_file=None, **values).confirms_email

    assert confirms() is False
    assert confirms(SMTP_HOST="smtp.example.com") is True
    assert confirms(SMTP_HOST="smtp.example.com", EMAIL_CONFIRMATION="off") is False
    assert confirms(EMAIL_CONFIRMATION="on") is True
    assert confirms(SMTP_HOST="") is False


async def test_forgot_answers_at_once_even_when_the_smtp_server_is_slow(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, smtp_server: tuple[Recorder, int]
) -> None:
    recorder, port = smtp_server
    recorder.delay = 2.0
    gw = await make_gateway(
        make_settings(
            tmp_path,
            sqlite_url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(port),
            EMAIL_CONFIRMATION="off",
        )
    )
    await gw.signup("slow@example.com", DEFAULT_PASSWORD)
    started = time.perf_counter()
    known = await gw.client.post("/api/auth/password/forgot", json={"email": "slow@example.com"})
    known_took = time.perf_counter() - started
    assert known.status_code == 202
    assert known_took < 1.5, known_took  # the mail takes 2 s; the answer does not wait
    await gw.app.state.gateway.mail.drain()
    assert [to for _, to in recorder.received] == [["slow@example.com"]]
