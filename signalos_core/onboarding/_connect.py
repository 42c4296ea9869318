"""Built-in connection testers: the MT4/MT5 bridge over TCP/TLS, and paper trading.

Every tester returns a :class:`~signalos_core.plugins.ConnectionDiagnosis` (the provider plugin contract), never
raises for a network problem, and is bounded by its timeout. The stages are told apart so the hint can say what
to fix: name resolution (``dns_failure``), TCP connect (``refused``/``timeout``), TLS handshake (``tls_error``),
then the bridge handshake (``protocol_error``, ``bad_credentials``, ``wrong_server``).

The bridge handshake (``signalos-bridge/1``), one JSON object per line in each direction::

    -> {"op": "hello", "protocol": "signalos-bridge/1", "platform": "mt5", "login": "1234567",
        "password": "...", "server": "Broker-Demo"}
    <- {"ok": true, "protocol": "signalos-bridge/1", "platform": "mt5", "server": "Broker-Demo",
        "account_type": "demo"}
    <- {"ok": false, "error": "bad_credentials" | "wrong_server", "message": "..."}
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from signalos_core.plugins import ConnectionDiagnosis, ConnectionStatus

__all__ = [
    "BRIDGE_PROTOCOL",
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "MTBridgeTester",
    "PaperTester",
    "TargetPolicy",
    "diagnosis",
]

BRIDGE_PROTOCOL = "signalos-bridge/1"
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 10.0
_MAX_LINE = 64 * 1024

HINTS: dict[ConnectionStatus, str] = {
    ConnectionStatus.OK: "Connected.",
    ConnectionStatus.DNS_FAILURE: "The host name does not resolve: check it for typos (no http:// prefix for bridges).",
    ConnectionStatus.REFUSED: "Nothing is listening there: check the port, and that the bridge/API is running.",
    ConnectionStatus.TIMEOUT: "No answer in time: a firewall may drop the traffic, or the server is overloaded.",
    ConnectionStatus.TLS_ERROR: "The secure connection failed: check the TLS setting, and paste the server's "
    "certificate if it is self-signed.",
    ConnectionStatus.BAD_CREDENTIALS: "The server rejected the login: check the account number/key and password.",
    ConnectionStatus.WRONG_SERVER: "Reached a server, but not the right one for this account: check the server "
    "name and the account type (demo/live).",
    ConnectionStatus.PROTOCOL_ERROR: "Something answered, but it does not speak the expected protocol: check the "
    "port or URL.",
    ConnectionStatus.ERROR: "The connection failed unexpectedly; try again, then contact support with the detail.",
}


def diagnosis(
    status: ConnectionStatus, detail: str = "", *, latency_ms: float | None = None, hint: str | None = None
) -> ConnectionDiagnosis:
    """A diagnosis with the standard hint for ``status`` (``detail`` is truncated to the contract's limit)."""
    return ConnectionDiagnosis(
        status=status,
        latency_ms=None if latency_ms is None else round(max(latency_ms, 0.0), 3),
        hint=(hint or HINTS[status])[:500],
        detail=detail[:2000],
    )


def bounded_timeout(config: Mapping[str, Any]) -> float:
    """The test timeout asked for in ``config["timeout_s"]``, clamped to (0, MAX_TIMEOUT_S]."""
    raw = config.get("timeout_s", DEFAULT_TIMEOUT_S)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_S
    if not value > 0:  # also catches NaN
        return DEFAULT_TIMEOUT_S
    return min(value, MAX_TIMEOUT_S)


class _Failed(Exception):  # noqa: N818 - internal control flow carrying a finished diagnosis, not an error type
    def __init__(self, result: ConnectionDiagnosis) -> None:
        super().__init__(result.detail)
        self.result = result


@attrs.frozen
class TargetPolicy:
    """Which addresses a user-supplied host may resolve to.

    By default only public addresses: otherwise the connection tester would let any user probe the service's
    own network (loopback, private ranges, cloud metadata at 169.254.169.254). Tests and single-user desktop
    deployments allow private targets explicitly.
    """

    allow_private: bool = False

    def allowed(self, address: str) -> bool:
        """Whether connecting to ``address`` (an IP literal) is permitted."""
        if self.allow_private:
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return ip.is_global and not ip.is_multicast

    async def resolve(self, host: str, port: int, deadline: float) -> list[str]:
        """Resolve ``host`` to the permitted IP addresses, or raise ``_Failed`` with the diagnosis."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise _Failed(diagnosis(ConnectionStatus.TIMEOUT, f"resolving {host!r} took too long")) from None
        except (socket.gaierror, UnicodeError) as exc:
            raise _Failed(diagnosis(ConnectionStatus.DNS_FAILURE, f"cannot resolve {host!r}: {exc}")) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        permitted = [address for address in addresses if self.allowed(address)]
        if not permitted:
            raise _Failed(
                diagnosis(
                    ConnectionStatus.WRONG_SERVER,
                    f"{host!r} resolves to a private or reserved address, which this service does not connect to",
                    hint="Use the public address of your bridge or broker API.",
                )
            )
        return permitted


def tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """A verifying client context; ``ca_pem`` adds a certificate to trust (self-signed bridges)."""
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_failure(exc: ssl.SSLError | ssl.CertificateError) -> ConnectionDiagnosis:
    """Diagnosis of a failed TLS handshake, with a specific hint for untrusted or mismatched certificates."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return diagnosis(
            ConnectionStatus.TLS_ERROR,
            f"certificate not accepted: {exc.verify_message or exc}",
            hint="The server's certificate is not trusted (self-signed, expired or for another name): paste its "
            "certificate in the 'certificate to trust' field, or fix the server's certificate.",
        )
    return diagnosis(ConnectionStatus.TLS_ERROR, f"TLS handshake failed: {exc}")


@attrs.frozen
class MTBridgeTester:
    """Tests an MT4/MT5 account through the SignalOS bridge (TCP, optionally TLS)."""

    policy: TargetPolicy = attrs.field(factory=TargetPolicy)

    async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
        """Resolve, connect, handshake and log in; the diagnosis says which stage failed."""
        loop = asyncio.get_running_loop()
        timeout = bounded_timeout(config)
        deadline = loop.time() + timeout
        host, port = str(config["host"]), int(config["port"])
        started = time.perf_counter()
        writer: asyncio.StreamWriter | None = None
        try:
            addresses = await self.policy.resolve(host, port, deadline)
            context = tls_context(config.get("ca_pem")) if config.get("tls") else None
            reader, writer = await self._connect(addresses, port, host, context, deadline)
            return await self._handshake(reader, writer, config, started, deadline)
        except _Failed as failed:
            return failed.result
        finally:
            if writer is not None:
                writer.close()
                # A peer that never reads can make wait_closed hang; the close itself is what matters.
                try:
                    async with asyncio.timeout(0.5):
                        await writer.wait_closed()
                except (TimeoutError, OSError, ssl.SSLError):
                    pass

    async def _connect(
        self, addresses: list[str], port: int, host: str, context: ssl.SSLContext | None, deadline: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        last: ConnectionDiagnosis | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                    return await asyncio.open_connection(
                        address, port, ssl=context, server_hostname=host if context else None, limit=_MAX_LINE
                    )
            except TimeoutError:
                raise _Failed(
                    diagnosis(ConnectionStatus.TIMEOUT, f"connecting to {host}:{port} ({address}) timed out")
                ) from None
            except ConnectionRefusedError:
                last = diagnosis(ConnectionStatus.REFUSED, f"{host}:{port} ({address}) refused the connection")
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise _Failed(tls_failure(exc)) from None
            except OSError as exc:
                last = diagnosis(ConnectionStatus.ERROR, f"{host}:{port} ({address}): {exc.strerror or exc}")
        # `addresses` is never empty (resolve raises instead), so `last` is set here.
        raise _Failed(last or diagnosis(ConnectionStatus.ERROR, f"no address to connect to for {host}"))

    async def _handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        config: Mapping[str, Any],
        started: float,
        deadline: float,
    ) -> ConnectionDiagnosis:
        loop = asyncio.get_running_loop()
        hello = {
            "op": "hello",
            "protocol": BRIDGE_PROTOCOL,
            "platform": config.get("platform"),
            "login": str(config.get("login", "")),
            "password": str(config.get("password", "")),
            "server": config.get("server"),
        }
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                writer.write(json.dumps(hello).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
        except TimeoutError:
            return diagnosis(
                ConnectionStatus.TIMEOUT,
                "connected, but the bridge did not answer the handshake in time",
                hint="The port accepts connections but nothing answers: is this the bridge port, and is the "
                "bridge (EA) attached and running in the terminal?",
            )
        except (ValueError, asyncio.LimitOverrunError):
            return diagnosis(ConnectionStatus.PROTOCOL_ERROR, "the server sent an overlong line, not a bridge reply")
        except (ssl.SSLError, ssl.CertificateError) as exc:
            return tls_failure(exc)
        except OSError as exc:
            return diagnosis(ConnectionStatus.ERROR, f"connection lost during the handshake: {exc}")
        latency = (time.perf_counter() - started) * 1000
        return _bridge_reply(line, config, latency)


def _bridge_reply(line: bytes, config: Mapping[str, Any], latency: float) -> ConnectionDiagnosis:
    if not line:
        return diagnosis(
            ConnectionStatus.PROTOCOL_ERROR, "the server closed the connection without answering", latency_ms=latency
        )
    try:
        reply = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return diagnosis(
            ConnectionStatus.PROTOCOL_ERROR,
            f"unexpected answer {line[:60]!r} (not a SignalOS bridge)",
            latency_ms=latency,
        )
    if not isinstance(reply, dict) or (reply.get("ok") is True and reply.get("protocol") != BRIDGE_PROTOCOL):
        return diagnosis(
            ConnectionStatus.PROTOCOL_ERROR, "the answer is not a signalos-bridge/1 reply", latency_ms=latency
        )
    if reply.get("ok") is not True:
        error = str(reply.get("error", ""))
        message = str(reply.get("message", ""))[:300]
        if error == "bad_credentials":
            return diagnosis(ConnectionStatus.BAD_CREDENTIALS, f"login refused: {message}", latency_ms=latency)
        if error == "wrong_server":
            return diagnosis(ConnectionStatus.WRONG_SERVER, f"server refused: {message}", latency_ms=latency)
        return diagnosis(ConnectionStatus.ERROR, f"bridge error {error!r}: {message}", latency_ms=latency)
    for field in ("platform", "server"):
        if config.get(field) is not None and reply.get(field) != config.get(field):
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"this bridge serves {field} {reply.get(field)!r}, not {config.get(field)!r}",
                latency_ms=latency,
            )
    expected = config.get("expected_account_type")
    if expected is not None and reply.get("account_type") != expected:
        return diagnosis(
            ConnectionStatus.WRONG_SERVER,
            f"the account is {reply.get('account_type')!r}, you expected {expected!r}",
            latency_ms=latency,
            hint="This login is for a different account type: use your "
            f"{expected} account's login and server, or change the expected account type.",
        )
    return diagnosis(
        ConnectionStatus.OK,
        f"{reply.get('platform')} account {config.get('login')} on {reply.get('server')} ({reply.get('account_type')})",
        latency_ms=latency,
    )


@attrs.frozen
class PaperTester:
    """Paper trading has no remote end: the test checks the settings and always reaches the simulator."""

    async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
        """``ok`` for a positive starting balance and a currency code; ``error`` otherwise."""
        started = time.perf_counter()
        try:
            balance = Decimal(str(config.get("starting_balance", "")))
        except InvalidOperation:
            balance = Decimal(0)
        if not balance.is_finite() or balance <= 0:
            return diagnosis(
                ConnectionStatus.ERROR,
                "starting_balance must be a positive amount",
                hint="Enter the balance the paper account starts with, e.g. 10000.",
            )
        currency = str(config.get("currency", ""))
        return diagnosis(
            ConnectionStatus.OK,
            f"paper account with {balance} {currency}",
            latency_ms=(time.perf_counter() - started) * 1000,
        )
