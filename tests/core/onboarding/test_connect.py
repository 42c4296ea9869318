"""Connection testers against real loopback servers: every diagnosis, bounded time, concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest

from signalos_core.onboarding import (
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    ConnectionTesters,
    PaperTester,
    TargetPolicy,
)
from signalos_core.plugins import ConnectionDiagnosis, ConnectionStatus
from tests.core.onboarding.conftest import (
    API_KEY,
    BRIDGE_LOGIN,
    BRIDGE_PASSWORD,
    BRIDGE_SERVER,
    DISCORD_TOKEN,
    DNS_FAILURE_HOST,
    TELEGRAM_TOKEN,
    HttpApi,
    LoopbackServers,
)


@pytest.fixture
def testers(http_api: HttpApi) -> ConnectionTesters:
    return ConnectionTesters(
        policy=TargetPolicy(allow_private=True),
        telegram_api=f"{http_api.base}/telegram",
        discord_api=f"{http_api.base}/discord",
    )


def bridge(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "mt_bridge",
        "host": "127.0.0.1",
        "port": port,
        "platform": "mt5",
        "login": BRIDGE_LOGIN,
        "password": BRIDGE_PASSWORD,
        "server": BRIDGE_SERVER,
        **extra,
    }


# ------------------------------------------------------------------------------------------- MT bridge
async def test_bridge_ok_measures_latency(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    result = await testers.test(bridge(loopback.bridge(), expected_account_type="demo"))
    assert result.status is ConnectionStatus.OK
    assert result.ok
    assert result.latency_ms is not None
    assert 0 < result.latency_ms < 5000
    assert "1234567" in result.detail
    assert result.hint == "Connected."


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"password": "wrong-password"}, ConnectionStatus.BAD_CREDENTIALS),
        ({"server": "Other-Server"}, ConnectionStatus.WRONG_SERVER),
        ({"expected_account_type": "live"}, ConnectionStatus.WRONG_SERVER),
        ({"platform": "mt4"}, ConnectionStatus.WRONG_SERVER),
    ],
)
async def test_bridge_rejections(
    testers: ConnectionTesters, loopback: LoopbackServers, change: dict[str, Any], status: ConnectionStatus
) -> None:
    result = await testers.test(bridge(loopback.bridge(), **change))
    assert result.status is status
    assert result.latency_ms is not None  # the server answered: latency is known
    assert result.hint
    assert "wrong-password" not in result.detail


async def test_bridge_refused(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    result = await testers.test(bridge(loopback.closed_port()))
    assert result.status is ConnectionStatus.REFUSED
    assert "listening" in result.hint


async def test_bridge_stall_times_out_within_bound(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    started = time.perf_counter()
    result = await testers.test(bridge(loopback.bridge("stall"), timeout_s=0.3))
    elapsed = time.perf_counter() - started
    assert result.status is ConnectionStatus.TIMEOUT
    assert "handshake" in result.detail
    assert 0.25 < elapsed < 2.0


async def test_bridge_wrong_protocol(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    result = await testers.test(bridge(loopback.bridge("wrong_protocol")))
    assert result.status is ConnectionStatus.PROTOCOL_ERROR
    assert "SSH" in result.detail


async def test_bridge_tls_self_signed_untrusted_then_trusted(
    testers: ConnectionTesters, loopback: LoopbackServers
) -> None:
    port = loopback.bridge(tls=True)
    untrusted = await testers.test(bridge(port, tls=True))
    assert untrusted.status is ConnectionStatus.TLS_ERROR
    assert "self-signed" in untrusted.detail or "certificate" in untrusted.detail
    assert "certificate" in untrusted.hint
    trusted = await testers.test(bridge(port, tls=True, ca_pem=loopback.cert_pem))
    assert trusted.status is ConnectionStatus.OK, trusted.detail


async def test_bridge_tls_against_plain_server(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    result = await testers.test(bridge(loopback.bridge(), tls=True, timeout_s=2))
    assert result.status is ConnectionStatus.TLS_ERROR


async def test_bridge_plain_against_tls_server(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    # The TLS server cannot parse our JSON hello as a ClientHello and hangs up, or never answers.
    result = await testers.test(bridge(loopback.bridge(tls=True), timeout_s=1))
    assert result.status in (ConnectionStatus.PROTOCOL_ERROR, ConnectionStatus.TIMEOUT)


async def test_bridge_dns_failure(testers: ConnectionTesters) -> None:
    result = await testers.test({**bridge(1), "host": DNS_FAILURE_HOST})
    assert result.status is ConnectionStatus.DNS_FAILURE
    assert "resolve" in result.hint


async def test_default_policy_refuses_private_targets(loopback: LoopbackServers) -> None:
    result = await ConnectionTesters().test(bridge(loopback.bridge()))
    assert result.status is ConnectionStatus.WRONG_SERVER
    assert "private" in result.detail


async def test_tests_run_concurrently(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    stall, good = loopback.bridge("stall"), loopback.bridge()
    started = time.perf_counter()
    results = await asyncio.gather(
        *(testers.test(bridge(stall, timeout_s=0.5)) for _ in range(4)),
        *(testers.test(bridge(good)) for _ in range(4)),
    )
    elapsed = time.perf_counter() - started
    assert [r.status for r in results[:4]] == [ConnectionStatus.TIMEOUT] * 4
    assert [r.status for r in results[4:]] == [ConnectionStatus.OK] * 4
    assert elapsed < 1.5  # four 0.5 s stalls in parallel, not 2 s in sequence


async def test_timeout_is_clamped(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    assert MAX_TIMEOUT_S <= 10
    assert DEFAULT_TIMEOUT_S <= MAX_TIMEOUT_S
    # A nonsense timeout falls back to the default rather than waiting forever or failing open.
    for bad in ("soon", -1, float("nan")):
        result = await testers.test(bridge(loopback.bridge(), timeout_s=bad))
        assert result.status is ConnectionStatus.OK


# ------------------------------------------------------------------------------------------- broker API
def broker(http_api: HttpApi, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "broker_api",
        "base_url": f"{http_api.base}/broker",
        "api_key": API_KEY,
        "account_id": "DEMO1",
        **extra,
    }


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({}, ConnectionStatus.OK),
        ({"expected_account_type": "demo"}, ConnectionStatus.OK),
        ({"api_key": "wrong-key-000"}, ConnectionStatus.BAD_CREDENTIALS),
        ({"account_id": "NOPE"}, ConnectionStatus.WRONG_SERVER),
        ({"account_id": "LIVE1", "expected_account_type": "demo"}, ConnectionStatus.WRONG_SERVER),
    ],
)
async def test_broker_api(testers: ConnectionTesters, http_api: HttpApi, change: dict[str, Any], status: Any) -> None:
    result = await testers.test(broker(http_api, **change))
    assert result.status is status, result.detail
    assert result.latency_ms is not None
    assert result.latency_ms > 0
    assert "wrong-key" not in result.detail


async def test_broker_api_wrong_protocol(testers: ConnectionTesters, http_api: HttpApi) -> None:
    result = await testers.test(broker(http_api, base_url=f"{http_api.base}/html"))
    assert result.status is ConnectionStatus.PROTOCOL_ERROR


async def test_broker_api_network_failures(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    refused = await testers.test({**broker(HttpApi(loopback.closed_port()))})
    assert refused.status is ConnectionStatus.REFUSED
    dns = await testers.test({**broker(HttpApi(1)), "base_url": f"http://{DNS_FAILURE_HOST}/api"})
    assert dns.status is ConnectionStatus.DNS_FAILURE
    stall = loopback.bridge("stall")
    timeout = await testers.test({**broker(HttpApi(stall)), "timeout_s": 0.3})
    assert timeout.status is ConnectionStatus.TIMEOUT
    garbage = await testers.test({**broker(HttpApi(loopback.bridge("wrong_protocol"))), "timeout_s": 2})
    assert garbage.status is ConnectionStatus.PROTOCOL_ERROR


async def test_broker_api_https_self_signed(testers: ConnectionTesters, loopback: LoopbackServers) -> None:
    port = loopback.bridge(tls=True)
    result = await testers.test(broker(HttpApi(port), base_url=f"https://127.0.0.1:{port}/broker"))
    assert result.status is ConnectionStatus.TLS_ERROR


# ------------------------------------------------------------------------------------------- Telegram / Discord
@pytest.mark.parametrize(
    ("channel", "token", "status"),
    [
        ("@signals_room", TELEGRAM_TOKEN, ConnectionStatus.OK),
        ("@signals_room", "987654321:" + "B" * 35, ConnectionStatus.BAD_CREDENTIALS),
        ("@unknown_room", TELEGRAM_TOKEN, ConnectionStatus.WRONG_SERVER),
        ("@alice_private", TELEGRAM_TOKEN, ConnectionStatus.WRONG_SERVER),
    ],
)
async def test_telegram(testers: ConnectionTesters, channel: str, token: str, status: ConnectionStatus) -> None:
    result = await testers.test({"kind": "telegram", "channel": channel, "bot_token": token})
    assert result.status is status
    assert token not in result.detail


async def test_telegram_token_never_in_failure_detail(loopback: LoopbackServers) -> None:
    testers = ConnectionTesters(
        policy=TargetPolicy(allow_private=True), telegram_api=f"http://127.0.0.1:{loopback.closed_port()}"
    )
    result = await testers.test({"kind": "telegram", "channel": "@signals_room", "bot_token": TELEGRAM_TOKEN})
    assert result.status is ConnectionStatus.REFUSED
    assert TELEGRAM_TOKEN not in result.detail


@pytest.mark.parametrize(
    ("channel", "token", "status"),
    [
        ("123456789012345678", DISCORD_TOKEN, ConnectionStatus.OK),
        ("123456789012345678", "x" * 30, ConnectionStatus.BAD_CREDENTIALS),
        ("999456789012345678", DISCORD_TOKEN, ConnectionStatus.WRONG_SERVER),
        ("223456789012345678", DISCORD_TOKEN, ConnectionStatus.WRONG_SERVER),
    ],
)
async def test_discord(testers: ConnectionTesters, channel: str, token: str, status: ConnectionStatus) -> None:
    result = await testers.test({"kind": "discord", "channel_id": channel, "bot_token": token})
    assert result.status is status


# ------------------------------------------------------------------------------------------- paper, registry
async def test_paper() -> None:
    ok = await PaperTester().test_connection({"starting_balance": "10000", "currency": "USD"})
    assert ok.status is ConnectionStatus.OK
    bad = await PaperTester().test_connection({"starting_balance": "abc"})
    assert bad.status is ConnectionStatus.ERROR


class SyncProvider:
    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.seen: list[dict[str, str]] = []

    def test_connection(self, config: Mapping[str, Any]) -> Any:
        self.seen.append(dict(config))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


async def test_provider_plugins(testers: ConnectionTesters) -> None:
    good = SyncProvider(ConnectionDiagnosis(status=ConnectionStatus.OK, latency_ms=3.0, hint="fine"))
    providers = {
        "acme.signals": good,
        "acme.broken": SyncProvider(RuntimeError("boom")),
        "acme.liar": SyncProvider(True),
    }
    answers = {"kind": "provider_plugin", "plugin_id": "acme.signals", "config": {"channel": "gold", "retries": 3}}
    result = await testers.test(answers, providers=providers.get)
    assert result.status is ConnectionStatus.OK
    assert good.seen == [{"channel": "gold", "retries": "3"}]  # the contract's payload is str -> str
    broken = await testers.test({**answers, "plugin_id": "acme.broken"}, providers=providers.get)
    assert broken.status is ConnectionStatus.ERROR
    assert "boom" in broken.detail
    liar = await testers.test({**answers, "plugin_id": "acme.liar"}, providers=providers.get)
    assert liar.status is ConnectionStatus.ERROR
    missing = await testers.test({**answers, "plugin_id": "acme.none"}, providers=providers.get)
    assert missing.status is ConnectionStatus.ERROR
    assert "not installed" in missing.detail
    assert (await testers.test(answers)).status is ConnectionStatus.ERROR


async def test_async_provider_and_unknown_kind(testers: ConnectionTesters) -> None:
    class Slow:
        async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
            await asyncio.sleep(0)
            return ConnectionDiagnosis(status=ConnectionStatus.BAD_CREDENTIALS, hint=str(config["k"]))

    testers.register("custom", Slow())
    assert "custom" in testers.kinds
    result = await testers.test({"kind": "custom", "k": "x"})
    assert result.status is ConnectionStatus.BAD_CREDENTIALS
    unknown = await testers.test({"kind": "carrier_pigeon"})
    assert unknown.status is ConnectionStatus.ERROR
