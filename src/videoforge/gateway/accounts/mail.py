"""Outgoing mail of local accounts (password resets, address confirmations, notices).

Two transports behind one :class:`Mailer` protocol:

- :class:`SmtpMailer`: the configured SMTP server (``SMTP_*``), through the standard
  library's ``smtplib`` in a worker thread (it blocks), with STARTTLS whenever the server
  offers it (required with ``SMTP_STARTTLS=true``) or TLS from the first byte
  (``SMTP_TLS``), and the certificate checked against the system's roots.
- :class:`FileMailer`: no SMTP configured (the embedded single-machine set-up). Each
  message becomes an ``.eml`` file in ``<data dir>/mail/``, readable by the operator
  only, so that an account can still be recovered on a machine with no mail at all.

Sending happens after the answer is decided and does not delay it
(:class:`MailOutbox`): an answer that waited for the SMTP server would tell a stranger
whether the address it named has an account (only those get mail).
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

import structlog

from videoforge.settings import Settings

log = structlog.get_logger("videoforge.gateway.mail")

DEFAULT_FROM = "VideoForge <noreply@localhost>"


@dataclass(frozen=True)
class Mail:
    """One plain-text message to one address."""

    to: str
    subject: str
    text: str


class Mailer(Protocol):
    """Delivers one message or raises (an :class:`OSError` or ``smtplib.SMTPException``)."""

    async def send(self, mail: Mail) -> None: ...

    def describe(self) -> str:
        """Where mail goes, for the start-up log."""
        ...


def build_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    message.set_content(mail.text)
    return message


class SmtpMailer:
    """Mail through an SMTP server (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host
        self.host = settings.smtp_host
        self.port = settings.smtp_port or (465 if settings.smtp_tls else 587)
        self.user = settings.smtp_user
        self.password = settings.smtp_password
        self.starttls = settings.smtp_starttls
        self.tls = settings.smtp_tls
        self.timeout = settings.smtp_timeout
        self.sender = settings.mail_from or DEFAULT_FROM

    def describe(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def _send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            smtp.ehlo()
            if not self.tls and self.starttls is not False:
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                elif self.starttls:
                    raise smtplib.SMTPNotSupportedError(
                        f"{self.host} does not offer STARTTLS (SMTP_STARTTLS=true)"
                    )
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, build_message(mail, self.sender))


class FileMailer:
    """Mail as ``.eml`` files in a directory (see the module docstring)."""

    def __init__(self, directory: Path, sender: str = DEFAULT_FROM) -> None:
        self.directory = directory
        self.sender = sender

    def describe(self) -> str:
        return str(self.directory.resolve())

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        # Reset links are as good as passwords: only the operator may read them.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        return path

    async def send(self, mail: Mail) -> None:
        path = await asyncio.to_thread(self._write, build_message(mail, self.sender))
        log.info("mail_written", path=str(path), subject=mail.subject)


def build_mailer(settings: Settings) -> Mailer:
    """SMTP when ``SMTP_HOST`` is set, else .eml files in the data directory."""
    if settings.smtp_host:
        return SmtpMailer(settings)
    return FileMailer(settings.mail_dir, settings.mail_from or DEFAULT_FROM)


class MailOutbox:
    """Sends mail in the background so that answers never wait for (or reveal) it.

    A message that fails is logged and dropped: what it carried can be asked for again
    (another reset link, another confirmation). Mail still in flight when the process
    stops is lost the same way; :meth:`drain` at shutdown gives it a moment.
    """

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, mail: Mail, *, kind: str) -> None:
        task = asyncio.create_task(self._deliver(mail, kind), name=f"mail:{kind}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, mail: Mail, kind: str) -> None:
        try:
            await self.mailer.send(mail)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail_failed", kind=kind, error=f"{type(exc).__name__}: {exc}")
            return
        log.info("mail_sent", kind=kind)

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait (at most ``seconds``) for the mail in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)
