"""Engine behaviour: fail-closed validation, lock lifecycle, fills and the day roll, backends, serialisation."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest

from signalos_core import EngineError, EvaluationError, compliance
from signalos_core.compliance import (
    AccountState,
    ClockEvent,
    DaySnapshot,
    Engine,
    EquityUpdate,
    Fill,
    Lock,
    Order,
    Position,
    available_backends,
    check,
    load_builtin_profile,
    observe,
)
from signalos_core.compliance._durable import to_fixed, to_fixed_pair
from tests.core.compliance.conftest import T0, UTC, make_profile, state

D = Decimal

Build = Callable[..., Engine]
FTMO = load_builtin_profile("ftmo-2step-challenge")


def order(**kw: object) -> Order:
    base: dict[str, object] = {"symbol": "EURUSD", "side": "buy", "size": D(1), "at": T0}
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("st", "od", "field"),
    [
        (state(), order(at=dt.datetime(2026, 5, 12, 10, 0)), "order.at"),  # noqa: DTZ001 - the naive input under test
        (state(equity=D("NaN")), order(), "state.equity"),
        (state(balance=D("Infinity")), order(), "state.balance"),
        (state(), order(size=D(-1)), "order.size"),
        (state(), order(size=D(0)), "order.size"),
        (
            state(positions=[Position(id="p", symbol="EURUSD", side="buy", size=D(-2))]),
            order(),
            "state.positions[0].size",
        ),
        (state(), order(symbol="NOPE"), "order.symbol"),
    ],
)
def test_bad_input_is_an_error_never_an_allow(st: AccountState, od: Order, field: str) -> None:
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).check(st, od)
    assert info.value.field == field


def test_observe_validates_events() -> None:
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).observe(state(), Fill(at=T0, symbol="ZZZZZZ1", side="buy", size=D(1), price=D(1)))
    assert info.value.field == "event.symbol"
    held = Position(id="p", symbol="EURUSD", side="buy", size=D(1))  # no entry: P/L cannot be computed
    with pytest.raises(EvaluationError, match="net_pnl"):
        Engine(FTMO).observe(
            state(positions=[held]), Fill(at=T0, symbol="EURUSD", side="sell", size=D(1), price=D(1), action="close")
        )
    with pytest.raises(EvaluationError, match="no open position"):
        Engine(FTMO).observe(
            state(), Fill(at=T0, symbol="EURUSD", side="sell", size=D(1), price=D(1), action="close", net_pnl=D(1))
        )


def test_unknown_and_unavailable_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineError, match="unknown backend"):
        Engine(FTMO, backend="drools")  # type: ignore[arg-type]
    import signalos_core.compliance._durable as durable_mod

    monkeypatch.setattr(durable_mod, "durable_import_error", lambda: "durable-rules cannot be imported: test")
    with pytest.raises(EngineError, match="cannot be imported") as info:
        Engine(FTMO, backend="durable")
    assert info.value.backend == "durable"
    assert Engine(FTMO).backend == "python"


def test_fixed_point_keeps_the_sign_exactly() -> None:
    assert to_fixed(D("95000.00"), D("95000")) == 0
    assert to_fixed(D("1E-30"), D(0)) == 1
    assert to_fixed(D("-1E-30"), D(0)) == -1
    assert to_fixed(D("1E+40"), D(0)) == 2**62
    assert to_fixed_pair(D("95000.00"), D("95000")) == (9500000, 9500000)
    assert to_fixed_pair(D("94999.99"), D("95000")) == (9499999, 9500000)
    assert to_fixed_pair(D("0.333333333333333333333333"), D(0)) == (333333334, 0)  # > 18 places: difference
    assert to_fixed_pair(D("1E+30"), D("1E+30")) == (0, 0)
    assert available_backends()["python"] is None


def test_lock_lifecycle_lock_reduce_only_then_reset() -> None:
    engine = Engine(load_builtin_profile("topstep-combine-50k"))
    chicago_open = dt.datetime(2026, 5, 12, 22, 0, tzinfo=UTC)  # 17:00 CDT
    st = state(
        balance=D(50000),
        initial_balance=D(50000),
        day_start=DaySnapshot(at=chicago_open, balance=D(50000)),
        positions=[Position(id="p", symbol="ESM6", side="buy", size=D(1), floating_pnl=D(-1000))],
    )
    at = dt.datetime(2026, 5, 13, 15, 0, tzinfo=UTC)
    hit = engine.observe(st, EquityUpdate(at=at, equity=D(49000)))
    assert hit.outcome == "lock"
    lock = next(a for a in hit.actions if a.type == "lock")
    assert lock.until == dt.datetime(2026, 5, 13, 22, 0, tzinfo=UTC)
    assert {a.type for a in hit.actions} == {"lock", "flatten"}
    locked = hit.next_state
    blocked = engine.check(locked, order(symbol="ESM6", at=at + dt.timedelta(minutes=5)))
    assert not blocked.allowed
    assert blocked.fired[0].reason == "locked"
    reduce = engine.check(locked, order(symbol="ESM6", side="sell", intent="close", at=at + dt.timedelta(minutes=5)))
    assert reduce.allowed
    flat = msgspec.structs.replace(locked, positions=[], balance=D(49000), equity=D(49000))  # after the flatten
    after = engine.observe(flat, ClockEvent(at=lock.until, event="day_boundary"))
    assert [a.type for a in after.actions][:1] == ["unlock"]
    assert after.next_state.locks == []
    again = engine.observe(hit.next_state, EquityUpdate(at=at, equity=D(49000)))
    assert len(again.next_state.locks) == 1


def test_breach_is_forever_and_recorded_once() -> None:
    engine = Engine(FTMO)
    first = engine.observe(state(), EquityUpdate(at=T0, equity=D("89999.99")))
    assert first.outcome == "breach"
    assert first.actions[0].terminal
    later = T0 + dt.timedelta(days=30)
    assert not engine.check(first.next_state, order(at=later)).allowed
    assert engine.check(first.next_state, order(at=later, intent="close", side="sell")).allowed
    second = engine.observe(first.next_state, EquityUpdate(at=T0, equity=D("89999.99")))
    assert {lk.rule_id for lk in first.next_state.locks} == {"ftmo.max_loss", "ftmo.max_daily_loss"}
    assert second.next_state.locks == first.next_state.locks


def test_fills_open_close_and_roll_day() -> None:
    engine = Engine(FTMO)
    opened = engine.observe(
        state(),
        Fill(at=T0, symbol="EURUSD", side="buy", size=D(2), price=D("1.1"), position_id="t1", stop_loss=D("1.09")),
    )
    st = opened.next_state
    assert [p.id for p in st.positions] == ["t1"]
    assert st.trading_days == [dt.date(2026, 5, 12)]
    partial = engine.observe(
        st,
        Fill(
            at=T0 + dt.timedelta(hours=1),
            symbol="EURUSD",
            side="sell",
            size=D(1),
            price=D("1.11"),
            action="close",
            net_pnl=D(1000),
        ),
    )
    assert partial.next_state.positions[0].size == D(1)
    assert partial.next_state.balance == D(101000)
    assert partial.next_state.high_water.closed_balance == D(101000)
    gross = engine.observe(
        partial.next_state,
        Fill(at=T0 + dt.timedelta(hours=2), symbol="EURUSD", side="sell", size=D(1), price=D("1.1050"), action="close"),
    )
    assert gross.next_state.balance == D(101500)
    assert gross.next_state.positions == []
    next_day = engine.observe(
        partial.next_state, ClockEvent(at=dt.datetime(2026, 5, 12, 22, 0, tzinfo=UTC), event="day_boundary")
    )
    snap = next_day.next_state.day_start
    assert snap is not None
    assert snap.balance == D(101000)
    assert next_day.next_state.eod_balances[-1].day == dt.date(2026, 5, 12)


def test_results_serialise_to_plain_json_with_profile_identity() -> None:
    decision = check(FTMO, state(equity=D(94000)), order())
    payload = json.loads(json.dumps(decision.to_dict()))
    assert payload["profile"] == {
        "id": "ftmo-2step-challenge",
        "version": "2026.1",
        "hash": decision.profile.hash,
        "backend": "python",
    }
    assert payload["fired"][0]["measured"] == "94000"
    assert payload["allowed"] is False
    assert json.loads(decision.to_json())["fired"][0]["rule_id"] == "ftmo.max_daily_loss"
    assert decision.rule_ids == ["ftmo.max_daily_loss"]
    assert decision.outcome == "deny"
    enforcement = observe(FTMO, state(), EquityUpdate(at=T0, equity=D(100000)))
    assert json.loads(json.dumps(enforcement.to_dict()))["next_state"]["equity"] == "100000"
    assert msgspec.json.decode(msgspec.json.encode(enforcement.next_state), type=AccountState) == enforcement.next_state


def test_missing_input_denies_with_reason() -> None:
    positions = [Position(id="p", symbol="EURUSD", side="buy", size=D(1))]  # floating P/L unknown, no equity
    decision = Engine(FTMO).check(state(positions=positions), order())
    assert not decision.allowed
    assert {f.reason for f in decision.fired} == {"missing_input"}
    assert decision.fired[0].missing_field == "state.equity"


def test_objectives_exposed_on_observe() -> None:
    engine = Engine(make_profile("  - {id: t.pt, kind: profit_target, outcome: objective, params: {pct: 5}}\n"))
    result = engine.observe(state(balance=D(105000)), ClockEvent(at=T0, event="objectives_evaluation"))
    assert result.objectives[0].status == "met"
    assert result.outcome == "allow"
    missing = engine.observe(
        msgspec.structs.replace(state(balance=D(105000)), initial_balance=None),
        ClockEvent(at=T0, event="objectives_evaluation"),
    )
    assert missing.objectives[0].status == "met"  # falls back to the account_size parameter (100,000)


def test_locks_from_state_show_until() -> None:
    lock = Lock(rule_id="x.dll", kind="lock", since=T0, until=T0 + dt.timedelta(hours=2), reason="daily loss")
    decision = Engine(FTMO).check(state(locks=[lock]), order())
    assert "until 2026-05-12 14:00 Europe/Prague" in decision.fired[0].message
    assert "daily loss" in decision.fired[0].message


PUBLIC = sorted(
    [
        "BACKENDS",
        "AccountState",
        "Action",
        "BuiltinProfileInfo",
        "ClockEvent",
        "ClosedTrade",
        "DailyPnl",
        "DayBoundary",
        "DaySnapshot",
        "DayTrade",
        "Decision",
        "Enforcement",
        "Engine",
        "EodBalance",
        "EquityUpdate",
        "Event",
        "Fill",
        "FiredRule",
        "HighWaterMarks",
        "Instrument",
        "InstrumentCatalog",
        "Lock",
        "NewsEvent",
        "ObjectiveStatus",
        "Order",
        "ParameterSpec",
        "PendingOrder",
        "Position",
        "Profile",
        "ProfileIssue",
        "ProfileRef",
        "RuleSpec",
        "SourceRef",
        "available_backends",
        "builtin_rulesets_dir",
        "check",
        "default_catalog",
        "kind_names",
        "list_builtin_profiles",
        "load_builtin_profile",
        "load_profile",
        "observe",
        "profile_hash",
        "profile_json_schema",
    ]
)


def test_public_api_is_pinned() -> None:
    assert sorted(compliance.__all__) == PUBLIC
    for name in compliance.__all__:
        assert getattr(compliance, name) is not None


NAIVE = dt.datetime(2026, 5, 12, 10, 0)  # noqa: DTZ001 - naive on purpose: the input under test


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"day_start": DaySnapshot(at=NAIVE, balance=D(1))}, "state.day_start.at"),
        ({"day_start": DaySnapshot(at=T0, balance=D("NaN"))}, "state.day_start.balance"),
        ({"day_start": DaySnapshot(at=T0, balance=D(1), equity=D("Inf"))}, "state.day_start.equity"),
        ({"high_water": compliance.HighWaterMarks(equity=D("NaN"))}, "state.high_water.equity"),
        (
            {"positions": [Position(id="p", symbol="EURUSD", side="buy", size=D(1), opened_at=NAIVE)]},
            "state.positions[0].opened_at",
        ),
        (
            {"positions": [Position(id="p", symbol="EURUSD", side="buy", size=D(1), margin=D(-1))]},
            "state.positions[0].margin",
        ),
        (
            {"positions": [Position(id="p", symbol="EURUSD", side="buy", size=D(1), entry=D("NaN"))]},
            "state.positions[0].entry",
        ),
        ({"positions": [Position(id="p", symbol="EURUSD", side="buy", size=D("NaN"))]}, "state.positions[0].size"),
        ({"maintenance_margin": D(-5)}, "state.maintenance_margin"),
        ({"as_of": NAIVE}, "state.as_of"),
        ({"created_at": NAIVE}, "state.created_at"),
        ({"locks": [Lock(rule_id="x.y", kind="lock", since=NAIVE)]}, "state.locks[0].since"),
        (
            {"eod_balances": [compliance.EodBalance(day=dt.date(2026, 1, 1), balance=D("NaN"))]},
            "state.eod_balances[0].balance",
        ),
    ],
)
def test_state_validation_names_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).check(state(**kw), order())
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"price": D("NaN")}, "order.price"), ({"margin": D(-1)}, "order.margin"), ({"size": D("NaN")}, "order.size")],
)
def test_order_validation_names_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).check(state(), order(**kw))
    assert info.value.field == field


def test_event_validation() -> None:
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).observe(state(), Fill(at=T0, symbol="EURUSD", side="buy", size=D(0), price=D(1)))
    assert info.value.field == "event.size"
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).observe(state(), EquityUpdate(at=NAIVE, equity=D(1)))
    assert info.value.field == "event.at"
    with pytest.raises(EvaluationError):
        Engine(FTMO).objectives(state(equity=D("NaN")), T0)


def test_instrument_catalog_extension_and_errors() -> None:
    catalog = compliance.default_catalog()
    assert catalog.regimes() == ["esma", "nfa"]
    with pytest.raises(EvaluationError, match="unknown regime"):
        catalog.classify(catalog.get("EURUSD"), "mifid")
    extended = catalog.extended([compliance.Instrument(symbol="ACME", asset_class="equity", quote="USD")])
    assert extended.classify(extended.get("ACME"), "esma") == "equity"
    assert extended.get("EUR/USD").symbol == "EURUSD"
    assert extended.get("GCZ6").metal == "gold"
    with pytest.raises(EvaluationError):
        extended.get("ZZZQ6")
    with pytest.raises(EvaluationError, match="instrument data"):
        compliance.InstrumentCatalog.from_yaml("regimes: {}\nfx: {contract_size: 1, currencies: []}\ninstruments: 5\n")
    with pytest.raises(EvaluationError, match="instrument data"):
        compliance.InstrumentCatalog.from_yaml("regimes: no\n")


@pytest.mark.skipif(available_backends()["durable"] is not None, reason="durable-rules cannot be imported here")
def test_durable_adapter_turns_engine_failures_into_engine_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import signalos_core.compliance._durable as durable_mod

    engine = Engine(FTMO, backend="durable")
    host = durable_mod._host()

    class MessageNotHandledException(Exception):  # noqa: N818 - mirrors durable-rules' own class name
        pass

    def not_handled(*_args: object) -> None:
        raise MessageNotHandledException

    def rejected(*_args: object) -> None:
        raise Exception("error code: 204")

    monkeypatch.setattr(host, "assert_fact", not_handled)
    assert engine.check(state(equity=D(80000)), order()).allowed  # no rule matched = no hit
    monkeypatch.setattr(host, "assert_fact", rejected)
    with pytest.raises(EngineError, match="rejected the fact"):
        engine.check(state(), order())
    monkeypatch.undo()
    monkeypatch.setattr(host, "get_state", lambda *_a: {"exception": "exception caught action failed"})
    with pytest.raises(EngineError, match="action failed"):
        engine.check(state(), order())


@pytest.mark.skipif(available_backends()["durable"] is not None, reason="durable-rules cannot be imported here")
def test_durable_backend_leaves_no_timer_threads_running() -> None:
    # durable's Host re-arms two dispatch timers every 0.1-0.5 s forever; the adapter stops them.
    engine = Engine(FTMO, backend="durable")
    assert engine.check(state(), order()).allowed
    time.sleep(0.7)

    def durable_timers() -> list[threading.Thread]:
        return [
            thread
            for thread in threading.enumerate()
            if getattr(getattr(thread, "function", None), "__module__", "") == "durable.engine"
        ]

    assert durable_timers() == []
    assert engine.check(state(), order()).allowed  # still evaluates synchronously


def test_durable_import_probe_reports_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from signalos_core.compliance._durable import durable_import_error

    monkeypatch.setitem(sys.modules, "durable.engine", None)
    reason = durable_import_error()
    assert reason is not None
    assert "cannot be imported" in reason


def test_profile_outside_its_effective_window_is_noted() -> None:
    legacy = Engine(load_builtin_profile("finra-pdt-legacy"))
    late = dt.datetime(2027, 11, 1, 15, 0, tzinfo=UTC)
    decision = legacy.check(state(), order(symbol="AAPL", at=late))
    assert decision.allowed
    assert "outside that window" in decision.notes[0]
    assert "outside that window" in legacy.observe(state(), EquityUpdate(at=late, equity=D(1))).notes[0]
    assert Engine(FTMO).check(state(), order()).notes == []


@pytest.mark.parametrize(
    ("st", "od", "field"),
    [
        (AccountState(balance=100000.0), order(), "state.balance"),  # type: ignore[arg-type]
        (state(equity=95000), order(), "state.equity"),  # type: ignore[arg-type]
        (
            state(positions=[Position(id="p", symbol="EURUSD", side="buy", size=1.5)]),
            order(),  # type: ignore[arg-type]
            "state.positions[0].size",
        ),
        (state(), order(size=1.0), "order.size"),
        (state(), order(at="2026-05-12T10:00:00Z"), "order.at"),
    ],
)
def test_wrong_python_types_are_named(st: AccountState, od: Order, field: str) -> None:
    with pytest.raises(EvaluationError) as info:
        Engine(FTMO).check(st, od)
    assert info.value.field == field


def test_hand_built_profiles_are_checked_at_compile_time() -> None:
    import msgspec

    from signalos_core import ProfileSchemaError

    base = FTMO.rules[0]
    for bad in (
        msgspec.structs.replace(base, kind="nope"),
        msgspec.structs.replace(base, params={"pct": "five"}),
        msgspec.structs.replace(base, breach_when=None),
    ):
        with pytest.raises(ProfileSchemaError, match=base.id):
            Engine(msgspec.structs.replace(FTMO, rules=[bad]))
