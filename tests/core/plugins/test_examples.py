"""The three example plugins, packed, signed, installed and run in the sandbox end to end."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from signalos_core.plugins import (
    AccountState,
    ConnectionStatus,
    FetchSignalsRequest,
    OrderRequest,
    ParseRequest,
    PluginRegistry,
    PluginRuntime,
    SandboxPolicy,
    SigningKey,
    TradeIntent,
    build_package,
    verify_package,
)
from tests.core.plugins.conftest import EXAMPLES

U, A = "trader-7", "ftmo-100k"


@pytest.fixture
def runtime(registry: PluginRegistry, key: SigningKey, policy: SandboxPolicy):  # type: ignore[no-untyped-def]
    for name in ("gold-format", "risk-sizer", "paper-broker"):
        data = build_package(EXAMPLES / name, key)
        assert verify_package(data, registry.keyring).verified
        assert registry.install(data, user_id=U, account_id=A).state == "verified"
    with PluginRuntime(registry, policy=policy) as rt:
        for plugin_id in ("acme.gold-format", "acme.risk-sizer", "acme.paper-broker"):
            assert rt.activate(U, A, plugin_id).state == "active"
        yield rt


def test_channel_format_parser(runtime: PluginRuntime) -> None:
    text = "XAUUSD BUY @ 2350.5\nSL: 2340\nTP1: 2360\nTP2: 2372.5"
    result = runtime.parse(U, A, "acme.gold-format", ParseRequest(text=text, channel="gold-vip"))
    assert result is not None
    assert (result.symbol, result.side, result.order_type) == ("XAUUSD", "buy", "market")
    assert result.entry == Decimal("2350.5")
    assert result.stop_loss == Decimal("2340")
    assert result.take_profits == [Decimal("2360"), Decimal("2372.5")]
    limit = runtime.parse(U, A, "acme.gold-format", ParseRequest(text="xauusd sell limit @ 2400\nnote: risky"))
    assert limit is not None
    assert (limit.side, limit.order_type, limit.confidence) == ("sell", "limit", 0.8)
    assert runtime.parse(U, A, "acme.gold-format", ParseRequest(text="good morning traders")) is None
    assert runtime.parse(U, A, "acme.gold-format", ParseRequest(text="   ")) is None


def _intent(**changes: object) -> TradeIntent:
    base: dict[str, object] = {
        "intent_id": "i-1",
        "symbol": "XAUUSD",
        "side": "buy",
        "size": Decimal(5),
        "entry": Decimal(2350),
        "stop_loss": Decimal(2340),
    }
    base.update(changes)
    return TradeIntent(**base)  # type: ignore[arg-type]


ACCOUNT = AccountState(
    account_id=A, currency="USD", balance=Decimal(100_000), equity=Decimal(99_000), value_per_point=Decimal(100)
)


def test_risk_sizing_strategy(runtime: PluginRuntime) -> None:
    outcome = runtime.apply_strategy(U, A, "acme.risk-sizer", _intent(), ACCOUNT)
    assert not outcome.vetoed
    assert outcome.intent is not None
    # 1% of 100 000 = 1 000; 10 points x 100 per point per lot = 1 000 per lot -> 1.00 lot.
    assert outcome.intent.size == Decimal("1.00")
    assert (outcome.intent.symbol, outcome.intent.side, outcome.intent.stop_loss) == ("XAUUSD", "buy", Decimal(2340))
    vetoed = runtime.apply_strategy(U, A, "acme.risk-sizer", _intent(stop_loss=None), ACCOUNT)
    assert vetoed.vetoed
    assert vetoed.intent is None
    assert "stop loss" in vetoed.reason
    tiny = AccountState(
        account_id=A, currency="USD", balance=Decimal(10), equity=Decimal(10), value_per_point=Decimal(100)
    )
    assert runtime.apply_strategy(U, A, "acme.risk-sizer", _intent(), tiny).vetoed


def test_paper_broker_provider(runtime: PluginRuntime) -> None:
    ok = runtime.test_connection(U, A, "acme.paper-broker", {"server": "paper", "api_key": "k"})
    assert ok.status is ConnectionStatus.OK
    assert ok.latency_ms is not None
    wrong = runtime.test_connection(U, A, "acme.paper-broker", {"server": "live.example", "api_key": "k"})
    assert wrong.status is ConnectionStatus.WRONG_SERVER
    assert "paper" in wrong.hint
    creds = runtime.test_connection(U, A, "acme.paper-broker", {"server": "paper"})
    assert creds.status is ConnectionStatus.BAD_CREDENTIALS
    order = OrderRequest(
        client_order_id="c-1", symbol="XAUUSD", side="buy", size=Decimal("0.10"), price=Decimal("2350.5")
    )
    filled = runtime.submit_order(U, A, "acme.paper-broker", order)
    assert (filled.status, filled.filled_size, filled.average_price) == ("filled", Decimal("0.10"), Decimal("2350.5"))
    rejected = runtime.submit_order(
        U, A, "acme.paper-broker", OrderRequest(client_order_id="c-2", symbol="XAUUSD", side="sell", size=Decimal(1))
    )
    assert rejected.status == "rejected"
    assert runtime.fetch_signals(U, A, "acme.paper-broker", FetchSignalsRequest(cursor="7")).cursor == "7"


def test_examples_folder_is_complete() -> None:
    assert sorted(path.name for path in EXAMPLES.iterdir() if path.is_dir()) == [
        "gold-format",
        "paper-broker",
        "risk-sizer",
    ]
    assert all((EXAMPLES / name / "plugin.json").is_file() for name in ("gold-format", "paper-broker", "risk-sizer"))
    assert Path(EXAMPLES).is_absolute()
