"""Rule kinds one by one through the public Engine API, with exact-limit comparators."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from signalos_core.compliance import (
    ClockEvent,
    ClosedTrade,
    DailyPnl,
    DaySnapshot,
    DayTrade,
    Engine,
    EodBalance,
    EquityUpdate,
    Fill,
    HighWaterMarks,
    NewsEvent,
    Order,
    Position,
)
from tests.core.compliance.conftest import T0, UTC, state

D = Decimal

Build = Callable[..., Engine]


def order(**kw: object) -> Order:
    base: dict[str, object] = {"symbol": "EURUSD", "side": "buy", "size": D(1), "at": T0, "stop_loss": D("1.0")}
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


def ids(result: object) -> list[str]:
    return [f.rule_id for f in result.fired]  # type: ignore[attr-defined]


DAILY = "  - {id: t.daily, kind: daily_loss, outcome: breach, breach_when: %s, params: {pct: 5, base: %s}}\n"


@pytest.mark.parametrize(
    ("cmp", "equity", "fires"),
    [("lt", "95000", False), ("lt", "94999.99", True), ("le", "95000", True), ("le", "95000.01", False)],
)
def test_daily_loss_comparator_at_the_exact_floor(engine_for: Build, cmp: str, equity: str, fires: bool) -> None:
    engine = engine_for(DAILY % (cmp, "balance_at_boundary"))
    snap = DaySnapshot(at=dt.datetime(2026, 5, 11, 22, tzinfo=UTC), balance=D(100000))
    decision = engine.check(state(equity=D(equity), day_start=snap), order())
    assert (ids(decision) == ["t.daily"]) is fires
    assert decision.allowed is not fires


def test_daily_loss_bases(engine_for: Build) -> None:
    snap = DaySnapshot(at=dt.datetime(2026, 5, 11, 22, tzinfo=UTC), balance=D(100000), equity=D(102000))
    st = state(equity=D("96999"), day_start=snap)
    assert ids(engine_for(DAILY % ("le", "max_balance_equity_at_boundary")).check(st, order())) == ["t.daily"]
    assert ids(engine_for(DAILY % ("le", "equity_at_boundary")).check(st, order())) == ["t.daily"]
    assert ids(engine_for(DAILY % ("le", "initial_balance")).check(st, order())) == []
    stricter = "  - {id: t.daily, kind: daily_loss, outcome: breach, breach_when: le, params: {pct: 5, base: max_balance_equity_at_boundary, pct_of: %s}}\n"
    e_base = engine_for(stricter % "base").check(state(equity=D("96900"), day_start=snap), order())
    assert e_base.fired[0].threshold == D("96900.00")
    e_strict = engine_for(stricter % "stricter").check(state(equity=D("96900"), day_start=snap), order())
    assert e_strict.fired[0].threshold == D(97000)
    missing = engine_for(DAILY % ("le", "equity_at_boundary")).check(
        state(
            equity=D(99000), positions=[Position(id="p", symbol="EURUSD", side="buy", size=D(1), floating_pnl=D(-1000))]
        ),
        order(),
    )
    assert missing.fired[0].reason == "missing_input"
    assert missing.fired[0].missing_field == "state.day_start.equity"


def test_stale_snapshot_rebuilds_base_from_closed_trades(engine_for: Build) -> None:
    engine = engine_for(DAILY % ("lt", "balance_at_boundary"))
    old = DaySnapshot(at=dt.datetime(2026, 5, 10, 22, tzinfo=UTC), balance=D(100000))
    trade = ClosedTrade(
        id="c",
        symbol="EURUSD",
        side="buy",
        size=D(1),
        net_pnl=D(2000),
        closed_at=dt.datetime(2026, 5, 12, 8, tzinfo=UTC),
        opened_at=dt.datetime(2026, 5, 12, 7, tzinfo=UTC),
    )
    decision = engine.check(state(balance=D(104000), equity=D(96999), day_start=old, closed_trades=[trade]), order())
    assert decision.fired[0].base == D(102000)
    assert decision.fired[0].threshold == D(97000)
    assert "2026-05-12 00:00 Europe/Prague" in decision.fired[0].message


def test_warn_thresholds(engine_for: Build) -> None:
    rules = (
        "  - {id: t.max, kind: max_loss, outcome: breach, breach_when: lt, warn_at: [0.8, 0.9], params: {pct: 10}}\n"
    )
    engine = engine_for(rules)
    warned = engine.check(state(equity=D(91000)), order())
    assert warned.allowed
    assert warned.warnings[0].reason == "warning"
    assert "(90% warning level)" in warned.warnings[0].message
    assert engine.check(state(equity=D(92500)), order()).warnings == []
    enf = engine.observe(state(equity=D(91500)), EquityUpdate(at=T0, equity=D(91500)))
    assert enf.outcome == "warn"
    assert [a.type for a in enf.actions] == ["warn"]


def test_warn_outcome_rule_does_not_block(engine_for: Build) -> None:
    engine = engine_for("  - {id: t.soft, kind: max_loss, outcome: warn, breach_when: lt, params: {amount: 1000}}\n")
    decision = engine.check(state(equity=D(98000)), order())
    assert decision.allowed
    assert decision.warnings[0].rule_id == "t.soft"


@pytest.mark.parametrize(
    ("trail_on", "stop_at", "expected_floor"),
    [
        ("eod_balance", "initial", D(100000)),
        ("eod_balance", "none", D(104000)),
        ("closed_balance", "initial", D(100000)),
        ("equity", "none", D(105000)),
    ],
)
def test_trailing_kinds(engine_for: Build, trail_on: str, stop_at: str, expected_floor: D) -> None:
    rules = (
        "  - {id: t.trail, kind: trailing_max_loss, outcome: breach, breach_when: le, "
        f"params: {{amount: 6000, trail_on: {trail_on}, stop_at: {stop_at}}}}}\n"
    )
    st = state(
        balance=D(108000),
        equity=D(111000),
        day_start=DaySnapshot(at=dt.datetime(2026, 5, 11, 22, tzinfo=UTC), balance=D(108000)),
        eod_balances=[EodBalance(day=dt.date(2026, 5, 8), balance=D(110000))],
        high_water=HighWaterMarks(closed_balance=D(109000), equity=D(110500)),
    )
    decision = engine_for(rules).check(st, order())
    row = decision.evaluated[0]
    assert row.threshold == expected_floor
    assert decision.allowed


def test_e8_trailing_before_lock(engine_for: Build) -> None:
    rules = (
        "  - {id: t.trail, kind: trailing_max_loss, outcome: breach, breach_when: lt, "
        "params: {pct: 6, trail_on: closed_balance, stop_at: initial}}\n"
    )
    decision = engine_for(rules).check(state(balance=D(103000), equity=D("96999.99")), order())
    assert decision.fired[0].threshold == D(97000)
    assert not decision.allowed


def test_leverage_cap_classes_and_missing(engine_for: Build) -> None:
    rules = (
        "  - {id: t.fx, kind: leverage_cap, outcome: deny, breach_when: gt, params: {regime: esma, classes: [non_major_fx], max_leverage: 20}}\n"
        "  - {id: t.nfa, kind: leverage_cap, outcome: deny, breach_when: gt, params: {regime: nfa, classes: [nfa_major], max_leverage: 50}}\n"
    )
    engine = engine_for(rules)
    denied = engine.check(state(), order(symbol="AUDUSD", requested_leverage=D(30)))
    assert ids(denied) == ["t.fx"]
    assert engine.check(state(), order(symbol="AUDUSD", requested_leverage=D(20))).allowed
    computed = engine.check(state(), order(symbol="AUDUSD", price=D("0.65"), margin=D("3250")))
    assert computed.allowed
    assert computed.evaluated[0].measured == D(20)
    assert engine.check(state(), order(symbol="AUDUSD")).fired[0].reason == "missing_input"
    assert engine.check(state(), order(symbol="XAUUSD", requested_leverage=D(100))).allowed  # NFA: not forex


def test_margin_close_out_and_negative_balance(engine_for: Build) -> None:
    rules = (
        "  - {id: t.mco, kind: margin_close_out, outcome: breach, terminal: false, breach_when: le, params: {pct: 50}}\n"
        "  - {id: t.nbp, kind: negative_balance, outcome: breach, terminal: false}\n"
    )
    engine = engine_for(rules)
    pos = Position(id="p", symbol="EURUSD", side="buy", size=D(1), margin=D(2000), floating_pnl=D(-2000))
    enf = engine.observe(state(balance=D(3000), positions=[pos]), EquityUpdate(at=T0, equity=D(1000)))
    assert enf.outcome == "breach"
    assert {a.type for a in enf.actions} == {"violation", "flatten"}
    assert enf.next_state.locks == []
    neg = engine.observe(state(balance=D(3000), positions=[pos]), EquityUpdate(at=T0, equity=D(-5)))
    assert set(neg.rule_ids) == {"t.mco", "t.nbp"}
    nomargin = engine.observe(
        state(positions=[Position(id="p", symbol="EURUSD", side="buy", size=D(1))]), EquityUpdate(at=T0, equity=D(1))
    )
    assert nomargin.warnings[0].reason == "missing_input"


def test_size_limits_and_scaling_plan(engine_for: Build) -> None:
    rules = (
        "  - {id: t.size, kind: max_position_size, outcome: deny, breach_when: gt, params: {max: 5, unit: contracts, micro_weight: 0.1}}\n"
        "  - id: t.scale\n    kind: scaling_plan\n    outcome: deny\n    breach_when: gt\n"
        "    params: {tiers: [{max: 2}, {above: 1500, max: 3}, {above: 2000, max: 5}]}\n"
    )
    engine = engine_for(rules, tz="America/Chicago", at="17:00")
    held = [Position(id="a", symbol="ESM6", side="buy", size=D(2))]
    base = DaySnapshot(at=dt.datetime(2026, 5, 11, 22, tzinfo=UTC), balance=D(101500))
    st = state(positions=held, day_start=base, balance=D(103000))  # intraday profit does not raise the tier
    assert ids(engine.check(st, order(symbol="ESM6", size=D(1)))) == ["t.scale"]
    st2 = state(positions=held, day_start=msgspec_replace(base, balance=D("101500.01")), balance=D(101500))
    assert engine.check(st2, order(symbol="ESM6", size=D(1))).allowed
    micros = state(positions=[*held, Position(id="m", symbol="MESM6", side="buy", size=D(25))], day_start=base)
    decision = engine.check(micros, order(symbol="ESM6", size=D(1)))
    assert ids(decision) == ["t.size", "t.scale"]
    assert decision.fired[0].measured == D("5.5")
    assert engine.check(micros, order(symbol="ESM6", size=D(3), intent="close")).allowed


def msgspec_replace(obj: DaySnapshot, **kw: object) -> DaySnapshot:
    import msgspec

    return msgspec.structs.replace(obj, **kw)


def test_stop_loss_and_risk(engine_for: Build) -> None:
    rules = (
        "  - {id: t.sl, kind: stop_loss_required, outcome: breach, terminal: false, flatten: false, params: {grace_seconds: 180}}\n"
        "  - {id: t.risk, kind: max_risk_per_position, outcome: breach, terminal: false, breach_when: gt, params: {pct: 2}}\n"
    )
    engine = engine_for(rules)
    assert set(ids(engine.check(state(), order(stop_loss=None, price=D("1.1"))))) == {"t.sl", "t.risk"}
    exact = engine.check(state(), order(size=D(2), price=D("1.10000"), stop_loss=D("1.09000")))
    assert exact.allowed
    assert exact.evaluated[-1].measured == D(2000)
    assert ids(engine.check(state(), order(size=D("2.01"), price=D("1.1"), stop_loss=D("1.09")))) == ["t.risk"]
    jpy = engine.check(state(), order(symbol="USDJPY", size=D(1), price=D(150), stop_loss=D(147)))
    assert jpy.allowed
    assert jpy.evaluated[-1].measured == D(2000)
    assert (
        engine.check(state(), order(symbol="EURGBP", price=D("0.85"), stop_loss=D("0.84"))).fired[0].missing_field
        == "order.quote_to_account"
    )
    naked = Position(
        id="n", symbol="EURUSD", side="buy", size=D(1), entry=D("1.1"), opened_at=T0 - dt.timedelta(minutes=5)
    )
    enf = engine.observe(state(positions=[naked]), EquityUpdate(at=T0, equity=D(100000)))
    assert "t.sl" in enf.rule_ids
    assert enf.warnings[0].missing_field == "state.positions[0].stop_loss"
    fresh = msgspec_replace(naked, opened_at=T0 - dt.timedelta(seconds=60), stop_loss=None)  # type: ignore[arg-type]
    assert "t.sl" not in engine.observe(state(positions=[fresh]), EquityUpdate(at=T0, equity=D(100000))).rule_ids


def test_hedging_and_fifo(engine_for: Build) -> None:
    rules = (
        "  - {id: t.hedge, kind: no_hedging, outcome: deny, params: {mode: deny}}\n"
        "  - {id: t.fifo, kind: fifo_close, outcome: deny, params: {same_size_exception: true}}\n"
    )
    engine = engine_for(rules)
    old = Position(id="A", symbol="EURUSD", side="buy", size=D(1), opened_at=T0 - dt.timedelta(hours=3))
    mid = Position(id="B", symbol="EURUSD", side="buy", size=D(2), opened_at=T0 - dt.timedelta(hours=2))
    new = Position(id="C", symbol="EURUSD", side="buy", size=D(2), opened_at=T0 - dt.timedelta(hours=1))
    st = state(positions=[new, old, mid])
    assert ids(engine.check(st, order(side="sell"))) == ["t.hedge"]
    close = {"side": "sell", "intent": "close"}
    assert engine.check(st, order(position_id="A", **close)).allowed
    assert ids(engine.check(st, order(position_id="B", size=D(2), **close))) == ["t.fifo"]
    assert engine.check(st, order(position_id="B", size=D(2), same_size_request=True, **close)).allowed
    assert ids(engine.check(st, order(position_id="C", size=D(2), same_size_request=True, **close))) == ["t.fifo"]
    assert engine.check(st, order(position_id="Z", **close)).fired[0].reason == "missing_input"
    offset = engine_for("  - {id: t.hedge, kind: no_hedging, outcome: deny, params: {mode: offset}}\n")
    decision = offset.check(st, order(side="sell"))
    assert decision.allowed
    assert "FIFO offset" in decision.evaluated[0].message
    hedged = state(positions=[old, Position(id="S", symbol="EURUSD", side="sell", size=D(1))])
    assert offset.observe(hedged, EquityUpdate(at=T0, equity=D(100000))).rule_ids == ["t.hedge"]


def test_allowed_instruments_trading_hours_and_intraday_margin(engine_for: Build) -> None:
    rules = (
        "  - {id: t.allow, kind: allowed_instruments, outcome: deny, params: {asset_classes: [fx, metal]}}\n"
        '  - {id: t.hours, kind: trading_hours, outcome: deny, params: {timezone: America/New_York, windows: [{days: [mon, tue, wed, thu, fri], start: "09:30", end: "16:00"}]}}\n'
        "  - {id: t.im, kind: intraday_margin, outcome: deny, breach_when: lt}\n"
    )
    engine = engine_for(rules)
    at = dt.datetime(2026, 5, 12, 13, 30, tzinfo=UTC)  # 09:30 New York (EDT)
    ok = state(maintenance_margin=D(50000))
    assert engine.check(ok, order(at=at, margin_requirement=D(50000))).allowed
    assert ids(engine.check(ok, order(at=at, margin_requirement=D("50000.01")))) == ["t.im"]
    assert ids(engine.check(ok, order(at=at - dt.timedelta(minutes=1), margin_requirement=D(1)))) == ["t.hours"]
    assert ids(engine.check(ok, order(symbol="AAPL", at=at, margin_requirement=D(1)))) == ["t.allow"]
    assert engine.check(state(), order(at=at)).fired[0].missing_field == "state.maintenance_margin"
    assert engine.check(ok, order(at=at)).fired[0].missing_field == "order.margin_requirement"


def test_news_window_edges(engine_for: Build) -> None:
    rules = (
        "  - {id: t.news, kind: news_blackout, outcome: breach, terminal: false, breach_when: %s, "
        "params: {minutes_before: 2, minutes_after: 2}}\n"
    )
    release = dt.datetime(2026, 6, 5, 12, 30, tzinfo=UTC)
    cal = [NewsEvent(event="NFP", release_at=release, targeted_instruments=["EURUSD"])]
    st = state(news_calendar=cal)
    edge = release + dt.timedelta(minutes=2)
    assert ids(engine_for(rules % "le").check(st, order(at=edge))) == ["t.news"]
    assert engine_for(rules % "lt").check(st, order(at=edge)).allowed
    assert engine_for(rules % "le").check(st, order(at=edge + dt.timedelta(seconds=1))).allowed
    assert ids(engine_for(rules % "le").check(st, order(at=release, intent="close", side="sell"))) == ["t.news"]
    fill = Fill(
        at=release,
        symbol="EURUSD",
        side="sell",
        size=D(1),
        price=D("1.1"),
        action="close",
        net_pnl=D(10),
        trigger="stop_loss",
    )
    held = Position(id="p", symbol="EURUSD", side="buy", size=D(1), opened_at=release - dt.timedelta(hours=1))
    enf = engine_for(rules % "le").observe(state(news_calendar=cal, positions=[held]), fill)
    assert enf.rule_ids == ["t.news"]
    assert enf.next_state.positions == []
    assert enf.next_state.balance == D(100010)


def test_close_by_time_across_dst(engine_for: Build) -> None:
    rules = '  - {id: t.flat, kind: close_by_time, outcome: breach, terminal: false, params: {timezone: America/Chicago, flat_by: "15:10", reopen_at: "17:00"}}\n'
    engine = engine_for(rules, tz="America/Chicago", at="17:00")
    pos = Position(id="p", symbol="ESH6", side="buy", size=D(1), opened_at=dt.datetime(2026, 3, 9, 19, tzinfo=UTC))
    before_dst = dt.datetime(2026, 3, 6, 21, 15, tzinfo=UTC)  # 15:15 CST
    after_dst = dt.datetime(2026, 3, 9, 20, 15, tzinfo=UTC)  # 15:15 CDT
    assert (
        engine.observe(state(positions=[pos]), ClockEvent(at=before_dst, event="position_time_check")).outcome
        == "breach"
    )
    assert (
        engine.observe(state(positions=[pos]), ClockEvent(at=after_dst, event="position_time_check")).outcome
        == "breach"
    )
    assert (
        engine.observe(
            state(positions=[pos]), ClockEvent(at=after_dst - dt.timedelta(minutes=10), event="position_time_check")
        ).outcome
        == "allow"
    )
    assert ids(engine.check(state(), order(symbol="ESH6", at=after_dst))) == ["t.flat"]


def test_weekend_close_and_market_break(engine_for: Build) -> None:
    engine = engine_for("  - {id: t.wk, kind: weekend_close, outcome: breach, terminal: false}\n")
    pos = Position(id="p", symbol="EURUSD", side="buy", size=D(1))
    assert engine.observe(state(positions=[pos]), ClockEvent(at=T0, event="market_break")).outcome == "breach"
    assert (
        engine.observe(
            state(positions=[pos]), ClockEvent(at=T0, event="weekend_market_close", instruments_closing=["XAUUSD"])
        ).outcome
        == "allow"
    )
    assert engine.observe(state(), ClockEvent(at=T0, event="weekend_market_close")).outcome == "allow"


def test_pattern_day_trader_counts_business_days(engine_for: Build) -> None:
    rules = (
        "  - {id: t.pdt, kind: pattern_day_trader, outcome: warn, params: {holidays: [2026-04-03]}}\n"
        "  - {id: t.eq, kind: pdt_min_equity, outcome: deny, breach_when: lt, params: {holidays: [2026-04-03]}}\n"
    )
    engine = engine_for(rules, tz="America/New_York")
    at = dt.datetime(2026, 4, 7, 19, 30, tzinfo=UTC)
    held = Position(
        id="p", symbol="AAPL", side="buy", size=D(100), opened_at=dt.datetime(2026, 4, 7, 14, 5, tzinfo=UTC)
    )
    trades = [DayTrade(date=dt.date(2026, 3, d), symbol="X") for d in (30, 31)] + [
        DayTrade(date=dt.date(2026, 4, 1), symbol="Y")
    ]
    st = state(positions=[held], day_trades=trades, total_trades_in_window=10, equity_prior_close=D(24000))
    sell = order(symbol="AAPL", side="sell", size=D(100), at=at, intent="close")
    decision = engine.check(st, sell)
    assert decision.allowed
    assert decision.warnings == []
    rich = state(positions=[held], day_trades=trades, total_trades_in_window=10, equity_prior_close=D(25000))
    trades4 = [*trades, DayTrade(date=dt.date(2026, 4, 2), symbol="Z")]
    assert engine.check(msgspec_replace(rich, day_trades=trades4), sell).allowed  # type: ignore[arg-type]
    poor = msgspec_replace(st, day_trades=trades4)  # type: ignore[arg-type]
    denied = engine.check(poor, sell)
    assert ids(denied) == ["t.eq"]
    assert [w.rule_id for w in denied.warnings] == ["t.pdt"]
    assert engine.check(msgspec_replace(poor, account_type="cash"), sell).allowed  # type: ignore[arg-type]
    unknown = msgspec_replace(poor, total_trades_in_window=None)  # type: ignore[arg-type]
    assert engine.check(unknown, sell).fired[0].missing_field == "state.total_trades_in_window"
    assert engine.check(poor, order(symbol="AAPL", side="buy", at=at)).allowed  # not a day trade


def test_objectives(engine_for: Build) -> None:
    rules = (
        "  - {id: t.pt, kind: profit_target, outcome: objective, params: {amount: 5000}}\n"
        "  - {id: t.days, kind: min_trading_days, outcome: objective, params: {days: 2}}\n"
        "  - {id: t.best, kind: best_day_ratio, outcome: objective, breach_when: le, params: {max_share_pct: 50}}\n"
    )
    engine = engine_for(rules)
    trades = [
        ClosedTrade(
            id=str(i),
            symbol="EURUSD",
            side="buy",
            size=D(1),
            net_pnl=D(2500),
            closed_at=dt.datetime(2026, 5, 10 + i, 12, tzinfo=UTC),
            opened_at=dt.datetime(2026, 5, 10 + i, 11, tzinfo=UTC),
        )
        for i in range(2)
    ]
    statuses = {s.rule_id: s.status for s in engine.objectives(state(balance=D(105000), closed_trades=trades), T0)}
    assert statuses == {"t.pt": "met", "t.days": "met", "t.best": "met"}
    open_pos = [Position(id="p", symbol="EURUSD", side="buy", size=D(1), opened_at=T0)]
    statuses = {
        s.rule_id: s.status
        for s in engine.objectives(
            state(balance=D(105000), positions=open_pos, daily_pnl=[DailyPnl(day=dt.date(2026, 5, 1), pnl=D(5000))]), T0
        )
    }
    assert statuses == {"t.pt": "not_met", "t.days": "not_met", "t.best": "not_met"}


def test_day_base_from_previous_eod_balance(engine_for: Build) -> None:
    rules = (
        "  - id: t.scale\n    kind: scaling_plan\n    outcome: deny\n    breach_when: gt\n"
        "    params: {tiers: [{max: 2}, {above: 1500, max: 3}, {above: 2000, max: 5}]}\n"
    )
    engine = engine_for(rules, tz="America/Chicago", at="17:00")
    at = dt.datetime(2026, 5, 13, 15, 0, tzinfo=UTC)  # 10:00 CDT, session of 2026-05-13
    st = state(
        balance=D(52200),
        eod_balances=[EodBalance(day=dt.date(2026, 5, 12), balance=D(51600))],
        initial_balance=D(50000),
    )
    allowed = engine.check(st, order(symbol="ESM6", size=D(3), at=at))
    assert allowed.allowed
    assert allowed.evaluated[0].threshold == D(3)
    assert [f.rule_id for f in engine.check(st, order(symbol="ESM6", size=D(4), at=at)).fired] == ["t.scale"]


def test_weekend_window_in_local_time(engine_for: Build) -> None:
    rules = (
        "  - {id: t.wk, kind: weekend_close, outcome: breach, terminal: false, params: {timezone: Europe/Prague,"
        ' close_day: fri, close_at: "22:50", reopen_day: sun, reopen_at: "23:05"}}\n'
    )
    engine = engine_for(rules)
    friday_late = dt.datetime(2026, 6, 5, 20, 55, tzinfo=UTC)  # 22:55 CEST
    pos = Position(id="p", symbol="EURUSD", side="buy", size=D(1))
    assert engine.observe(state(positions=[pos]), EquityUpdate(at=friday_late, equity=D(100000))).outcome == "breach"
    early = friday_late - dt.timedelta(minutes=10)
    assert engine.observe(state(positions=[pos]), EquityUpdate(at=early, equity=D(100000))).outcome == "allow"
    assert [f.rule_id for f in engine.check(state(), order(at=friday_late)).fired] == ["t.wk"]
    assert engine.check(state(), order(at=friday_late, intent="close", side="sell")).allowed
    monday = dt.datetime(2026, 6, 8, 8, 0, tzinfo=UTC)
    assert engine.check(state(), order(at=monday)).allowed


def test_daily_loss_initial_plus_realized(engine_for: Build) -> None:
    rules = (
        "  - {id: t.d, kind: daily_loss, outcome: breach, breach_when: lt,"
        " params: {amount: 5000, base: initial_plus_realized}}\n"
    )
    trade = ClosedTrade(
        id="c", symbol="EURUSD", side="buy", size=D(1), net_pnl=D(2000), closed_at=T0 - dt.timedelta(hours=1)
    )
    decision = engine_for(rules).check(state(balance=D(102000), equity=D("96999.99"), closed_trades=[trade]), order())
    assert decision.fired[0].base == D(102000)
    assert decision.fired[0].threshold == D(97000)


def test_grandfathered_rule_applies_by_account_opening_date(engine_for: Build) -> None:
    rules = (
        "  - {id: t.dll, kind: max_loss, outcome: lock, breach_when: le, params: {amount: 1000},"
        " accounts_created_before: 2024-08-25T17:00:00-05:00}\n"
    )
    engine = engine_for(rules)
    losing = state(equity=D(99000))
    old = msgspec_replace(losing, created_at=dt.datetime(2024, 8, 1, tzinfo=UTC))  # type: ignore[arg-type]
    new = msgspec_replace(losing, created_at=dt.datetime(2024, 8, 25, 22, 0, tzinfo=UTC))  # type: ignore[arg-type]
    assert [f.rule_id for f in engine.check(old, order()).fired] == ["t.dll"]
    assert engine.check(new, order()).allowed
    assert not engine.check(losing, order()).allowed  # opening date unknown: the stricter reading applies
    later = engine_for(rules.replace("accounts_created_before", "accounts_created_from"))
    assert later.check(new, order()).fired
    assert later.check(old, order()).allowed


def test_grandfathering_needs_an_offset() -> None:
    from signalos_core import ProfileSchemaError
    from tests.core.compliance.conftest import make_profile

    with pytest.raises(ProfileSchemaError, match="needs a timezone offset"):
        make_profile(
            "  - {id: t.x, kind: max_loss, outcome: breach, breach_when: lt, params: {amount: 1},"
            " accounts_created_before: 2024-08-25T17:00:00}\n"
        )


def test_grandfathered_rule_can_skip_accounts_of_unknown_age(engine_for: Build) -> None:
    """``if_created_unknown: skip``: a legacy-only rule (TopstepX DLL) does not apply without an opening date."""
    rules = (
        "  - {id: t.dll, kind: max_loss, outcome: lock, breach_when: le, params: {amount: 1000},"
        " accounts_created_before: 2024-08-25T17:00:00-05:00, if_created_unknown: skip}\n"
    )
    engine = engine_for(rules)
    losing = state(equity=D(99000))
    old = msgspec_replace(losing, created_at=dt.datetime(2024, 8, 25, 21, 59, tzinfo=UTC))  # type: ignore[arg-type]
    new = msgspec_replace(losing, created_at=dt.datetime(2024, 8, 25, 22, 0, tzinfo=UTC))  # type: ignore[arg-type]
    assert [f.rule_id for f in engine.check(old, order()).fired] == ["t.dll"]
    assert engine.check(new, order()).allowed
    assert engine.check(losing, order()).allowed


def test_if_created_unknown_needs_a_grandfathering_window() -> None:
    from signalos_core import ProfileSchemaError
    from tests.core.compliance.conftest import make_profile

    with pytest.raises(ProfileSchemaError, match="if_created_unknown needs accounts_created_from"):
        make_profile(
            "  - {id: t.x, kind: max_loss, outcome: breach, breach_when: lt, params: {amount: 1},"
            " if_created_unknown: skip}\n"
        )


def test_order_kinds_not_applicable_and_missing_paths(engine_for: Build) -> None:
    rules = (
        "  - {id: t.lev, kind: leverage_cap, outcome: deny, breach_when: gt, params: {regime: esma, classes: [major_fx], max_leverage: 30}}\n"
        "  - {id: t.size, kind: max_position_size, outcome: deny, breach_when: gt, params: {max: 1, symbols: [XAUUSD]}}\n"
        "  - {id: t.scale, kind: scaling_plan, outcome: deny, breach_when: gt, params: {tiers: [{max: 1}]}}\n"
        "  - {id: t.sl, kind: stop_loss_required, outcome: deny, params: {at_submission: false}}\n"
        "  - {id: t.risk, kind: max_risk_per_position, outcome: deny, breach_when: gt, params: {pct: 2, of: equity}}\n"
        "  - {id: t.im, kind: intraday_margin, outcome: deny, breach_when: lt}\n"
        "  - {id: t.allow, kind: allowed_instruments, outcome: deny, params: {symbols: [EURUSD]}}\n"
    )
    engine = engine_for(rules)
    gold = Position(id="g", symbol="XAUUSD", side="buy", size=D(1))
    fx = Position(id="f", symbol="EURUSD", side="buy", size=D(5))
    st = state(positions=[gold, fx], maintenance_margin=D(1))
    closing = engine.check(st, order(intent="close", side="sell"))
    assert closing.allowed
    assert closing.evaluated == []
    sized = engine.check(st, order(symbol="XAUUSD", stop_loss=None, requested_leverage=D(5)))
    assert {f.rule_id for f in sized.fired} >= {"t.size", "t.allow", "t.scale"}
    no_initial = msgspec_replace(st, initial_balance=None)  # type: ignore[arg-type]
    no_size_param = engine_for(rules.replace("default: 100000", "default: 1"))
    assert no_size_param.check(no_initial, order(price=D("1.1"))).fired
    unknown_equity = state(
        positions=[Position(id="u", symbol="EURUSD", side="buy", size=D(1))], maintenance_margin=D(1)
    )
    missing = engine.check(unknown_equity, order(price=D("1.1"), margin_requirement=D(1)))
    assert {f.missing_field for f in missing.fired if f.reason == "missing_input"} == {
        "state.equity",
        "order.requested_leverage",
    }
    assert engine.check(state(), order()).fired[0].missing_field in {"order.price", "order.requested_leverage"}
    monitor = engine.observe(
        state(positions=[Position(id="r", symbol="EURUSD", side="buy", size=D(1), stop_loss=D("1.0"))]),
        EquityUpdate(at=T0, equity=D(100000)),
    )
    assert monitor.warnings[0].missing_field == "state.positions[0].price"


def test_fifo_needs_opening_times(engine_for: Build) -> None:
    engine = engine_for("  - {id: t.fifo, kind: fifo_close, outcome: deny}\n")
    held = [
        Position(id="A", symbol="EURUSD", side="buy", size=D(1)),
        Position(id="B", symbol="EURUSD", side="buy", size=D(1)),
    ]
    result = engine.check(state(positions=held), order(side="sell", intent="close", position_id="B"))
    assert result.fired[0].missing_field == "state.positions.opened_at"
