"""Delivery of emailed and texted codes and security notifications, behind one :class:`Sender` interface.

* :class:`SmtpSender` sends email with aiosmtplib (STARTTLS, implicit TLS, or plain on a loopback relay).
* :class:`HttpSmsSender` POSTs ``{"to": ..., "body": ...}`` with a bearer token to an SMS provider's HTTP API.
* :class:`OutboxSender` appends every message as one JSON line to a file: development and black-box tests
  read codes from there. It writes codes in clear text, so it is for test deployments only.

Senders never log a message body (it may hold a code).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib
import attrs
import httpx
import structlog

from service.settings import Settings

__all__ = [
    "DeliveryError",
    "HttpSmsSender",
    "Message",
    "OutboxSender",
    "Sender",
    "Senders",
    "SmtpSender",
    "build_senders",
]

_log = structlog.get_logger("signalos.twofactor.delivery")
_TIMEOUT_SECONDS = 10.0

Channel = Literal["email", "sms"]


class DeliveryError(RuntimeError):
    """A message could not be handed to the mail server or SMS provider."""


@attrs.frozen
class Message:
    """One outgoing message."""

    channel: Channel
    to: str
    subject: str
    body: str


class Sender(Protocol):
    """Something that delivers a :class:`Message` or raises :class:`DeliveryError`."""

    async def send(self, message: Message) -> None:
        """Deliver ``message``."""


class SmtpSender:
    """Email through an SMTP server (aiosmtplib)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        tls: str = "starttls",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.tls = host, port, sender, tls
        self._username, self._password = username, password

    async def send(self, message: Message) -> None:
        """Send ``message`` as a plain-text email."""
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.body)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self.tls == "tls",
                start_tls=self.tls == "starttls",
                timeout=_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            _log.warning("email_delivery_failed", host=self.host, error=type(exc).__name__)
            raise DeliveryError("email could not be delivered") from None


class HttpSmsSender:
    """Texts through an HTTP SMS provider: POST JSON ``{"to", "body"}`` with ``Authorization: Bearer``."""

    def __init__(self, *, url: str, token: str | None, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self._token = token
        self._client = client

    async def send(self, message: Message) -> None:
        """Submit ``message``; any non-2xx answer or transport error is a :class:`DeliveryError`."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        payload = {"to": message.to, "body": message.body}
        try:
            if self._client is not None:
                response = await self._client.post(self.url, json=payload, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=_TIMEOUT_SECONDS) as client:
                    response = await client.post(self.url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            _log.warning("sms_delivery_failed", error=type(exc).__name__)
            raise DeliveryError("SMS could not be delivered") from None
        if not response.is_success:
            _log.warning("sms_delivery_failed", status=response.status_code)
            raise DeliveryError(f"SMS provider answered {response.status_code}")


class OutboxSender:
    """Development/test delivery: one JSON line per message appended to ``path`` (codes in clear text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> None:
        """Append ``message`` to the outbox file."""
        line = json.dumps(
            {
                "channel": message.channel,
                "to": message.to,
                "subject": message.subject,
                "body": message.body,
                "sent_at": datetime.now(UTC).isoformat(),
            }
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


@attrs.frozen
class Senders:
    """The configured sender per channel (``None``: that channel is not available)."""

    email: Sender | None
    sms: Sender | None

    def for_channel(self, channel: str) -> Sender | None:
        """The sender of ``channel``."""
        return self.email if channel == "email" else self.sms if channel == "sms" else None


def build_senders(settings: Settings) -> Senders:
    """Senders from the settings: the outbox overrides both channels; otherwise SMTP and the SMS URL if set."""
    if settings.outbox_path is not None:
        _log.warning("outbox_delivery_enabled", path=str(settings.outbox_path))
        outbox = OutboxSender(settings.outbox_path)
        return Senders(email=outbox, sms=outbox)
    email: Sender | None = None
    if settings.smtp_host:
        email = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            tls=settings.smtp_tls,
            username=settings.smtp_user,
            password=settings.smtp_password,
        )
    sms: Sender | None = HttpSmsSender(url=settings.sms_url, token=settings.sms_token) if settings.sms_url else None
    return Senders(email=email, sms=sms)
