"""HTTP connection testers (httpx): a broker REST API, Telegram and Discord channels.

The host is resolved first through the :class:`TargetPolicy` (so a DNS failure is told apart from a refused
connection, and private addresses are refused by default), then one GET is made with a bounded timeout, no
redirects and no proxy from the environment. Status codes map to the diagnosis: 401/403 -> bad credentials,
404 or an unexpected account/channel type -> wrong server, a non-JSON body -> protocol error.

The broker API contract: ``GET {base_url}/accounts/{account_id}`` with ``Authorization: Bearer <api_key>``
answers ``{"account_id": "...", "account_type": "demo" | "live", ...}``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from signalos_core.onboarding._connect import (
    TargetPolicy,
    _Failed,
    bounded_timeout,
    diagnosis,
    tls_context,
    tls_failure,
)
from signalos_core.plugins import ConnectionDiagnosis, ConnectionStatus

__all__ = ["BrokerApiTester", "DiscordTester", "TelegramTester"]

TELEGRAM_API = "https://api.telegram.org"
DISCORD_API = "https://discord.com/api/v10"
_MAX_BODY = 256 * 1024


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _transport_failure(exc: httpx.TransportError, url: str) -> ConnectionDiagnosis:
    causes = _chain(exc)
    if isinstance(exc, httpx.TimeoutException):
        return diagnosis(ConnectionStatus.TIMEOUT, f"{type(exc).__name__} talking to {url}")
    for cause in causes:
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return tls_failure(cause)
        if isinstance(cause, ConnectionRefusedError):
            return diagnosis(ConnectionStatus.REFUSED, f"{url} refused the connection")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return diagnosis(ConnectionStatus.PROTOCOL_ERROR, f"{url} did not answer with valid HTTP: {exc}")
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        # The TCP connection was accepted, then dropped before any HTTP answer: whatever listens there is not
        # the HTTP API (a non-HTTP service hangs up on our request; a TLS-only port resets plain HTTP).
        return diagnosis(
            ConnectionStatus.PROTOCOL_ERROR, f"{url} accepted the connection but hung up without an HTTP answer"
        )
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        return diagnosis(ConnectionStatus.REFUSED, f"{url} refused the connection")
    return diagnosis(ConnectionStatus.ERROR, f"{type(exc).__name__}: {exc}")


@attrs.frozen
class _HttpProbe:
    """One bounded GET; returns (status code, decoded JSON or None, latency ms) or raises ``_Failed``."""

    policy: TargetPolicy

    async def get(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        ca_pem: str | None = None,
    ) -> tuple[int, Any, float]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise _Failed(diagnosis(ConnectionStatus.ERROR, f"not an http(s) URL: {url}"))
        await self.policy.resolve(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), deadline)
        remaining = max(deadline - loop.time(), 0.001)
        verify: ssl.SSLContext | bool = tls_context(ca_pem) if parsed.scheme == "https" else False
        started = time.perf_counter()
        try:
            async with (
                httpx.AsyncClient(
                    timeout=httpx.Timeout(remaining), verify=verify, follow_redirects=False, trust_env=False
                ) as client,
                asyncio.timeout(remaining),
            ):
                response = await client.get(url, headers=dict(headers))
                body = response.content[: _MAX_BODY + 1]
        except TimeoutError:
            raise _Failed(diagnosis(ConnectionStatus.TIMEOUT, f"no complete answer from {parsed.host}")) from None
        except httpx.TransportError as exc:
            raise _Failed(_transport_failure(exc, f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}")) from None
        latency = (time.perf_counter() - started) * 1000
        payload: Any = None
        if len(body) <= _MAX_BODY:
            try:
                payload = response.json() if body else None
            except ValueError:
                payload = None
        return response.status_code, payload, latency


def _secret_safe(url: str, secret: str) -> str:
    return url.replace(secret, "<token>") if secret else url


@attrs.frozen
class BrokerApiTester:
    """Tests a broker REST API account (see the module docstring for the contract)."""

    policy: TargetPolicy = attrs.field(factory=TargetPolicy)

    async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
        """Fetch the account with the API key and compare its type with the expected one."""
        base = str(config["base_url"]).rstrip("/")
        url = f"{base}/accounts/{quote(str(config['account_id']), safe='')}"
        try:
            status, payload, latency = await _HttpProbe(self.policy).get(
                url,
                {"Authorization": f"Bearer {config['api_key']}", "Accept": "application/json"},
                bounded_timeout(config),
                config.get("ca_pem"),
            )
        except _Failed as failed:
            return failed.result
        if status in (401, 403):
            return diagnosis(ConnectionStatus.BAD_CREDENTIALS, f"the API answered {status}", latency_ms=latency)
        if status == 404:
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"no account {config['account_id']!r} on this server (404)",
                latency_ms=latency,
                hint="The API does not know this account: check the account id and that the URL is your "
                "broker's API (live and demo often have different URLs).",
            )
        if status >= 500:
            return diagnosis(ConnectionStatus.ERROR, f"the API failed with {status}", latency_ms=latency)
        if status != 200 or not isinstance(payload, dict) or "account_type" not in payload:
            return diagnosis(
                ConnectionStatus.PROTOCOL_ERROR,
                f"unexpected answer (HTTP {status}, not a broker account document)",
                latency_ms=latency,
            )
        expected = config.get("expected_account_type")
        if expected is not None and payload.get("account_type") != expected:
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"the account is {payload.get('account_type')!r}, you expected {expected!r}",
                latency_ms=latency,
                hint=f"This API/account is not {expected}: use the {expected} endpoint or account id.",
            )
        return diagnosis(
            ConnectionStatus.OK,
            f"account {config['account_id']} ({payload.get('account_type')})",
            latency_ms=latency,
        )


@attrs.frozen
class TelegramTester:
    """Checks that a bot token works and the bot can read the channel (Bot API ``getChat``)."""

    policy: TargetPolicy = attrs.field(factory=TargetPolicy)
    api_base: str = TELEGRAM_API

    async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
        """``ok`` when the chat is a channel or group the bot can see."""
        token = str(config["bot_token"])
        url = f"{self.api_base.rstrip('/')}/bot{token}/getChat?chat_id={quote(str(config['channel']), safe='')}"
        try:
            status, payload, latency = await _HttpProbe(self.policy).get(url, {}, bounded_timeout(config))
        except _Failed as failed:
            return _redact(failed.result, token)
        if status == 401:
            return diagnosis(ConnectionStatus.BAD_CREDENTIALS, "Telegram rejected the bot token", latency_ms=latency)
        if not isinstance(payload, dict) or "ok" not in payload:
            return diagnosis(
                ConnectionStatus.PROTOCOL_ERROR, f"not a Bot API answer (HTTP {status})", latency_ms=latency
            )
        if payload.get("ok") is not True:
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"Telegram: {str(payload.get('description', ''))[:200]}",
                latency_ms=latency,
                hint="The bot cannot see this channel: check the @name, and add the bot to the channel as an admin.",
            )
        chat = payload.get("result") or {}
        if not isinstance(chat, dict) or chat.get("type") not in ("channel", "supergroup", "group"):
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"{config['channel']} is a {chat.get('type') if isinstance(chat, dict) else '?'} chat, not a channel",
                latency_ms=latency,
            )
        return diagnosis(ConnectionStatus.OK, f"channel {chat.get('title', config['channel'])}", latency_ms=latency)


@attrs.frozen
class DiscordTester:
    """Checks that a bot token works and the bot can read the channel (``GET /channels/{id}``)."""

    policy: TargetPolicy = attrs.field(factory=TargetPolicy)
    api_base: str = DISCORD_API

    async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
        """``ok`` when the channel is visible to the bot and is a text or announcement channel."""
        url = f"{self.api_base.rstrip('/')}/channels/{quote(str(config['channel_id']), safe='')}"
        headers = {"Authorization": f"Bot {config['bot_token']}"}
        try:
            status, payload, latency = await _HttpProbe(self.policy).get(url, headers, bounded_timeout(config))
        except _Failed as failed:
            return failed.result
        if status == 401:
            return diagnosis(ConnectionStatus.BAD_CREDENTIALS, "Discord rejected the bot token", latency_ms=latency)
        if status in (403, 404):
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"the bot cannot see channel {config['channel_id']} ({status})",
                latency_ms=latency,
                hint="Invite the bot to the server and give it 'Read Message History' on this channel.",
            )
        if status != 200 or not isinstance(payload, dict) or "type" not in payload:
            return diagnosis(
                ConnectionStatus.PROTOCOL_ERROR, f"not a Discord answer (HTTP {status})", latency_ms=latency
            )
        # 0 = text channel, 5 = announcement channel: the kinds that carry signals.
        if payload.get("type") not in (0, 5):
            return diagnosis(
                ConnectionStatus.WRONG_SERVER,
                f"channel type {payload.get('type')} is not a text channel",
                latency_ms=latency,
            )
        return diagnosis(
            ConnectionStatus.OK, f"channel #{payload.get('name', config['channel_id'])}", latency_ms=latency
        )


def _redact(result: ConnectionDiagnosis, token: str) -> ConnectionDiagnosis:
    # The Telegram token is part of the URL; never let it reach a diagnosis shown to users or logs.
    return diagnosis(result.status, _secret_safe(result.detail, token), latency_ms=result.latency_ms, hint=result.hint)
