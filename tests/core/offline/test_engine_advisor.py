"""The compliance engine plugged in through EngineAdvisor: advisory on the device, deciding on the server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from signalos_core.compliance import AccountState, DaySnapshot, Engine, load_builtin_profile
from signalos_core.offline import (
    AccountView,
    Action,
    AdvisoryDecision,
    ComplianceAdvisor,
    EngineAdvisor,
    OfflineClient,
    SyncServer,
)
from tests.core.offline.conftest import World

D = Decimal
AT = dt.datetime(2026, 5, 12, 11, 20, tzinfo=dt.UTC)


def _state(equity: str) -> AccountState:
    return AccountState(
        balance=D("100000"), equity=D(equity), initial_balance=D("100000"),
        day_start=DaySnapshot(at=dt.datetime(2026, 5, 11, 22, 0, tzinfo=dt.UTC), balance=D("100000")),
    )  # fmt: skip


def test_cached_profile_advises_and_the_current_state_decides(world: World) -> None:
    engine = Engine(load_builtin_profile("ftmo-2step-challenge"))
    cached, live = [_state("99000")], [_state("99000")]
    device_advisor = EngineAdvisor(engine, lambda: cached[0], clock=lambda: AT)
    server_advisor = EngineAdvisor(engine, lambda: live[0], clock=lambda: AT)
    assert isinstance(device_advisor, ComplianceAdvisor)
    server = SyncServer(world.store, world.broker, server_advisor, clock=world.clock)
    phone, engine_sync, _ = world.device("phone", server=server)
    client = OfflineClient(phone.outbox, advisor=device_advisor, clock=world.clock)
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"), stop_loss=D("1.0950"))
    record = client.outbox.get(opened.action_id)
    assert record is not None
    assert record.advisory == AdvisoryDecision(allowed=True)
    live[0] = _state("94000")  # meanwhile the account lost more than the daily limit
    engine_sync.sync_once()
    [entry] = client.report()
    assert entry.code == "rejected:compliance:ftmo.max_daily_loss"
    assert "floor" in entry.message


def test_input_the_engine_cannot_evaluate_fails_closed(world: World) -> None:
    advisor = EngineAdvisor(Engine(load_builtin_profile("ftmo-2step-challenge")), lambda: _state("100000"))
    phone, _, _ = world.device("phone")
    client = OfflineClient(phone.outbox, advisor=advisor, clock=world.clock)
    action = client.open("NOPE", "buy", D("1"), ref_price=D("1"))
    record = client.outbox.get(action.action_id)
    assert record is not None
    assert record.advisory is not None
    assert (record.advisory.allowed, record.advisory.rule_id) == (False, "invalid_input")
    modify_ok = advisor.advise(client.set_settings({"x": 1}), AccountView(settings={}))
    assert modify_ok.allowed


class _OddRuleIds:
    """An advisor whose rule ids are not in the outcome alphabet."""

    def advise(self, action: Action, account: AccountView) -> AdvisoryDecision:
        return AdvisoryDecision(allowed=False, rule_id="Max Lot/EU", reason="too big")


def test_rule_ids_are_normalised_into_the_outcome_code(world: World) -> None:
    server = SyncServer(world.store, world.broker, _OddRuleIds(), clock=world.clock)
    phone, engine_sync, _ = world.device("phone", server=server)
    phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    engine_sync.sync_once()
    assert [e.code for e in phone.report()] == ["rejected:compliance:max_lot_eu"]
