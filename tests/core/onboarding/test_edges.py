"""Edge cases of the testers and forms: odd bridge replies, HTTP failures, formats, fail-closed constraints."""

from __future__ import annotations

from typing import Any

import pytest

from signalos_core.onboarding import (
    BrokerApiTester,
    ConnectionTesters,
    DiscordTester,
    MTBridgeTester,
    StepValidationError,
    TargetPolicy,
    TelegramTester,
    default_workflow,
    parse_workflow,
    suggest_defaults,
    validate_answers,
)
from signalos_core.plugins import ConnectionStatus
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

LOCAL = TargetPolicy(allow_private=True)


def hello(port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "platform": "mt5",
        "login": BRIDGE_LOGIN,
        "password": BRIDGE_PASSWORD,
        "server": BRIDGE_SERVER,
        "timeout_s": 2,
    }


@pytest.mark.parametrize(
    ("reply", "status", "fragment"),
    [
        (b"", ConnectionStatus.PROTOCOL_ERROR, "without answering"),
        (b'{"ok": false, "error": "maintenance", "message": "weekend"}\n', ConnectionStatus.ERROR, "maintenance"),
        (b'{"ok": true, "protocol": "other/9"}\n', ConnectionStatus.PROTOCOL_ERROR, "not a signalos-bridge/1"),
        (b"[1, 2]\n", ConnectionStatus.PROTOCOL_ERROR, "not a signalos-bridge/1"),
        (b"x" * 70_000 + b"\n", ConnectionStatus.PROTOCOL_ERROR, "overlong"),
        (b"\xff\xfe\n", ConnectionStatus.PROTOCOL_ERROR, "unexpected answer"),
    ],
)
async def test_odd_bridge_replies(
    loopback: LoopbackServers, reply: bytes, status: ConnectionStatus, fragment: str
) -> None:
    result = await MTBridgeTester(LOCAL).test_connection(hello(loopback.bridge("reply", reply=reply)))
    assert result.status is status
    assert fragment in result.detail


def test_policy_addresses() -> None:
    strict = TargetPolicy()
    assert strict.allowed("8.8.8.8")
    assert not strict.allowed("10.1.2.3")
    assert not strict.allowed("169.254.169.254")  # cloud metadata
    assert not strict.allowed("::1")
    assert not strict.allowed("224.0.0.1")
    assert LOCAL.allowed("127.0.0.1")


async def test_http_failures(http_api: HttpApi, loopback: LoopbackServers) -> None:
    broker = BrokerApiTester(LOCAL)
    base = {"api_key": API_KEY, "account_id": "DEMO1"}
    failing = await broker.test_connection({**base, "base_url": f"{http_api.base}/failing"})
    assert failing.status is ConnectionStatus.ERROR
    assert "503" in failing.detail
    not_http = await broker.test_connection({**base, "base_url": "ftp://127.0.0.1/x"})
    assert not_http.status is ConnectionStatus.ERROR
    telegram = TelegramTester(LOCAL, f"{http_api.base}/html")
    garbage = await telegram.test_connection({"channel": "@signals_room", "bot_token": TELEGRAM_TOKEN})
    assert garbage.status is ConnectionStatus.PROTOCOL_ERROR
    dns = await TelegramTester(LOCAL, f"http://{DNS_FAILURE_HOST}").test_connection(
        {"channel": "@signals_room", "bot_token": TELEGRAM_TOKEN}
    )
    assert dns.status is ConnectionStatus.DNS_FAILURE
    assert TELEGRAM_TOKEN not in dns.detail
    discord = DiscordTester(LOCAL, f"{http_api.base}/html")
    odd = await discord.test_connection({"channel_id": "123456789012345678", "bot_token": DISCORD_TOKEN})
    assert odd.status is ConnectionStatus.PROTOCOL_ERROR
    refused = await DiscordTester(LOCAL, f"http://127.0.0.1:{loopback.closed_port()}").test_connection(
        {"channel_id": "123456789012345678", "bot_token": DISCORD_TOKEN}
    )
    assert refused.status is ConnectionStatus.REFUSED
    private = await ConnectionTesters().test({"kind": "broker_api", "base_url": f"{http_api.base}/broker", **base})
    assert private.status is ConnectionStatus.WRONG_SERVER


def test_form_messages_and_fail_closed_constraints() -> None:
    workflow = default_workflow()
    two_factor = workflow.step("enable_2fa")
    trade = workflow.step("paper_test_trade")
    assert two_factor is not None
    assert trade is not None
    with pytest.raises(StepValidationError) as caught:
        validate_answers(two_factor, {"code": "12ab56"}, {})
    assert "expected format" in caught.value.errors[0]["message"]
    answers = {"symbol": "EURUSD", "side": "buy", "lots": "0.10", "price": "1.1"}
    with pytest.raises(StepValidationError) as unset:
        validate_answers(trade, answers, {})  # risk settings not there: the cap cannot be checked
    assert unset.value.errors == [
        {"field": "lots", "message": "cannot be checked against risk_settings.max_lots (not set)"}
    ]
    with pytest.raises(StepValidationError):
        validate_answers(trade, answers, {"risk_settings": {"max_lots": "lots of them"}})
    validate_answers(trade, answers, {"risk_settings": {"max_lots": "0.10"}})  # inclusive bound


CUSTOM: dict[str, Any] = {
    "id": "custom",
    "version": 1,
    "title": "Custom",
    "steps": [
        {
            "id": "a",
            "title": "A",
            "form": {
                "type": "object",
                "properties": {
                    "size": {"type": ["string", "number"], "format": "positive-decimal"},
                    "tz": {"type": ["string", "number"], "format": "iana-timezone"},
                    "low": {"type": "string"},
                },
            },
            "constraints": [{"field": "size", "min": "low"}],
        },
        {
            "id": "b",
            "title": "B",
            "form": {"type": "object"},
            "suggest": [
                {"field": "copy", "from": "a.tz"},
                {"field": "scaled", "from": "a.size", "multiply": "2"},
                {"field": "weird", "from": "a.tz", "multiply": "2"},
            ],
        },
        {"id": "end", "title": "End", "final": True, "form": {"type": "object"}},
    ],
}


def test_custom_formats_and_suggestions() -> None:
    workflow = parse_workflow(CUSTOM)
    step_a, step_b = workflow.steps[0], workflow.steps[1]
    validate_answers(step_a, {"size": 5, "tz": 3}, {})  # non-strings are the `type` keyword's business
    with pytest.raises(StepValidationError) as caught:
        validate_answers(step_a, {"size": "-1", "tz": "../etc/passwd"}, {})
    assert {e["field"] for e in caught.value.errors} == {"size", "tz"}
    with pytest.raises(StepValidationError) as below:
        validate_answers(step_a, {"size": "1", "low": "2"}, {})
    assert below.value.errors[0]["message"] == "must be at least low (2)"
    validate_answers(step_a, {"size": "3", "low": "not a number"}, {})  # same-form bound unreadable: no check
    assert suggest_defaults(step_b, {"a": {"size": "2.5", "tz": "Asia/Tokyo"}}) == {
        "copy": "Asia/Tokyo",
        "scaled": "5.0",
    }
    assert suggest_defaults(step_b, {}) == {}
