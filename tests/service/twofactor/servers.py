"""Real loopback servers for delivery tests: an SMTP server (aiosmtpd) and an HTTP SMS provider."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _MailHandler:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        parsed = message_from_bytes(envelope.content)
        body = parsed.get_payload(decode=True)
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": parsed["Subject"],
                "body": body.decode() if isinstance(body, bytes) else str(body),
            }
        )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A local SMTP server; yields its port and the list that receives each message."""
    handler = _MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler.messages
    finally:
        controller.stop()


@contextmanager
def sms_provider(status: int = 200, token: str = "sms-token") -> Iterator[tuple[str, list[dict[str, Any]]]]:  # noqa: S107 - test credential
    """A local HTTP SMS provider: POST JSON {to, body} with the bearer token; yields its URL and received texts."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            authorised = self.headers.get("authorization") == f"Bearer {token}"
            if authorised and status == 200:
                received.append(payload)
            self.send_response(status if authorised else 401)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "msg-1"}')

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/messages", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
