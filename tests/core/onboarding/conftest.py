"""Real loopback servers for connection tests: an MT bridge (good, stalling, wrong protocol, TLS) and HTTP APIs.

Everything listens on 127.0.0.1 with an ephemeral port and runs in a background thread with its own event
loop, so both the async library tests and the synchronous HTTP-client service tests can use them. Nothing
ever touches the Internet: DNS failures use names under the reserved ``.invalid`` TLD (RFC 6761).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BRIDGE_LOGIN = "1234567"
BRIDGE_PASSWORD = "bridge-pass"
BRIDGE_SERVER = "Demo-Server"
API_KEY = "good-api-key-123"
TELEGRAM_TOKEN = "123456789:" + "A" * 35
# The token shown in the workflow's example and in docs/onboarding.md is accepted too.
TELEGRAM_TOKENS = (TELEGRAM_TOKEN, "123456789:AAExampleExampleExampleExampleExampl")
DISCORD_TOKEN = "discord-bot-token-" + "x" * 20
DNS_FAILURE_HOST = "bridge.signalos-test.invalid"


def make_self_signed(directory: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert file, key file, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signalos-test-bridge")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = directory / "bridge.crt", directory / "bridge.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, pem


async def _bridge_good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, account_type: str) -> None:
    line = await reader.readline()
    try:
        hello = json.loads(line)
    except ValueError:
        hello = {}
    if hello.get("login") != BRIDGE_LOGIN or hello.get("password") != BRIDGE_PASSWORD:
        reply: dict[str, Any] = {"ok": False, "error": "bad_credentials", "message": "invalid account or password"}
    elif hello.get("server") != BRIDGE_SERVER:
        reply = {"ok": False, "error": "wrong_server", "message": f"this terminal is on {BRIDGE_SERVER}"}
    else:
        reply = {
            "ok": True,
            "protocol": "signalos-bridge/1",
            "platform": "mt5",
            "server": BRIDGE_SERVER,
            "account_type": account_type,
        }
    writer.write(json.dumps(reply).encode() + b"\n")
    await writer.drain()
    writer.close()


@dataclass
class LoopbackServers:
    """Handles to the running servers (ports on 127.0.0.1)."""

    loop: asyncio.AbstractEventLoop
    tmp: Path
    cert_pem: str = ""
    _servers: list[Any] = field(default_factory=list)
    _stalled: list[asyncio.StreamWriter] = field(default_factory=list)

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=10)

    def bridge(self, mode: str = "good", *, account_type: str = "demo", tls: bool = False, reply: bytes = b"") -> int:
        """Start a bridge: ``good`` (real handshake), ``stall`` (accepts, never answers), ``wrong_protocol``,
        or ``reply`` (reads the hello, sends ``reply`` verbatim, hangs up)."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if mode == "reply":
                await reader.readline()
                writer.write(reply)
                await writer.drain()
                writer.close()
                return
            if mode == "stall":
                self._stalled.append(writer)  # keep it open and silent until the fixture ends
                return
            if mode == "wrong_protocol":
                writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
                await writer.drain()
                writer.close()
                return
            await _bridge_good(reader, writer, account_type)

        context = None
        if tls:
            cert_file, key_file, self.cert_pem = make_self_signed(self.tmp)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert_file, key_file)

        async def start() -> int:
            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        port: int = self._run(start())
        return port

    @staticmethod
    def closed_port() -> int:
        """A port on 127.0.0.1 where nothing listens (connections are refused)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def close(self) -> None:
        async def stop() -> None:
            for writer in self._stalled:
                writer.close()
            for server in self._servers:
                server.close()

        self._run(stop())


class _ApiHandler(BaseHTTPRequestHandler):
    """Broker REST API, Telegram Bot API and Discord API look-alikes, by path prefix."""

    def log_message(self, *args: Any) -> None:  # keep test output clean
        return

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/html/"):
            body = b"<html>router login</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path.startswith("/failing/"):
            self._json(503, {"error": "maintenance"})
            return
        if path.startswith("/broker/accounts/"):
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._json(401, {"error": "unauthorized"})
                return
            account = path.rsplit("/", 1)[1]
            if account not in ("DEMO1", "LIVE1"):
                self._json(404, {"error": "no such account"})
                return
            self._json(200, {"account_id": account, "account_type": "live" if account == "LIVE1" else "demo"})
            return
        if path.startswith("/telegram/bot"):
            token = path.removeprefix("/telegram/bot").split("/", 1)[0]
            if token not in TELEGRAM_TOKENS:
                self._json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                return
            chat = parse_qs(parts.query).get("chat_id", [""])[0]
            if chat in ("@signals_room", "@gold_signals"):
                self._json(200, {"ok": True, "result": {"id": -1001234567, "type": "channel", "title": "Signals"}})
            elif chat == "@alice_private":
                self._json(200, {"ok": True, "result": {"id": 42, "type": "private"}})
            else:
                self._json(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
            return
        if path.startswith("/discord/channels/"):
            if self.headers.get("Authorization") != f"Bot {DISCORD_TOKEN}":
                self._json(401, {"message": "401: Unauthorized", "code": 0})
                return
            channel = path.rsplit("/", 1)[1]
            if channel == "123456789012345678":
                self._json(200, {"id": channel, "type": 0, "name": "gold-signals"})
            elif channel == "223456789012345678":
                self._json(200, {"id": channel, "type": 2, "name": "voice"})
            else:
                self._json(404, {"message": "Unknown Channel", "code": 10003})
            return
        self._json(404, {"error": "not found"})


@dataclass
class HttpApi:
    """The HTTP look-alike server's base URLs."""

    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServers]:
    """Bridge servers in a background event loop (shared by the session; each test starts its own)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loopback-servers", daemon=True)
    thread.start()
    servers = LoopbackServers(loop=loop, tmp=tmp_path_factory.mktemp("tls"))
    yield servers
    servers.close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


@pytest.fixture(scope="session")
def http_api() -> Iterator[HttpApi]:
    """Broker/Telegram/Discord look-alike HTTP server on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="loopback-http", daemon=True)
    thread.start()
    yield HttpApi(port=int(server.server_address[1]))
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
