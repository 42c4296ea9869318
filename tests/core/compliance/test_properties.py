"""Hypothesis: both backends decide identically on generated profiles, states and orders; monotonicity in
order size and leverage; independence from position order; the day reset is idempotent."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.compliance import (
    AccountState,
    ClockEvent,
    DailyPnl,
    DaySnapshot,
    Engine,
    EodBalance,
    EquityUpdate,
    NewsEvent,
    Order,
    Position,
    available_backends,
)
from tests.core.compliance.conftest import make_profile

D = Decimal

UTC = dt.UTC
needs_durable = pytest.mark.skipif(
    available_backends()["durable"] is not None, reason="durable-rules cannot be imported on this Python"
)

CMP = st.sampled_from(["lt", "le"])
UPPER = st.sampled_from(["gt", "ge"])
RULES = {
    "daily": lambda c, n: (
        f"  - {{id: g.daily, kind: daily_loss, outcome: breach, breach_when: {c}, warn_at: [0.5], params: {{pct: {n}}}}}\n"
    ),
    "max": lambda c, n: (
        f"  - {{id: g.max, kind: max_loss, outcome: breach, breach_when: {c}, params: {{amount: {n * 1000}}}}}\n"
    ),
    "trail": lambda c, n: (
        f"  - {{id: g.trail, kind: trailing_max_loss, outcome: lock, breach_when: {c}, params: {{pct: {n}, trail_on: eod_balance, stop_at: initial}}}}\n"
    ),
    "size": lambda c, n: (
        f"  - {{id: g.size, kind: max_position_size, outcome: deny, breach_when: {'gt' if c == 'lt' else 'ge'}, params: {{max: {n}}}}}\n"
    ),
    "lev": lambda c, n: (
        f"  - {{id: g.lev, kind: leverage_cap, outcome: deny, breach_when: {'gt' if c == 'lt' else 'ge'}, params: {{regime: esma, classes: [major_fx, non_major_fx, gold], max_leverage: {n * 5}}}}}\n"
    ),
    "risk": lambda c, n: (
        f"  - {{id: g.risk, kind: max_risk_per_position, outcome: deny, breach_when: {'gt' if c == 'lt' else 'ge'}, params: {{pct: {n}}}}}\n"
    ),
    "sl": lambda c, n: "  - {id: g.sl, kind: stop_loss_required, outcome: deny}\n",
    "hedge": lambda c, n: "  - {id: g.hedge, kind: no_hedging, outcome: deny}\n",
    "target": lambda c, n: f"  - {{id: g.target, kind: profit_target, outcome: objective, params: {{pct: {n}}}}}\n",
    "best": lambda c, n: (
        f"  - {{id: g.best, kind: best_day_ratio, outcome: objective, breach_when: {c}, params: {{max_share_pct: {n * 10}}}}}\n"
    ),
    "news": lambda c, n: (
        f"  - {{id: g.news, kind: news_blackout, outcome: breach, terminal: false, breach_when: {c}, params: {{minutes_before: {n}, minutes_after: {n}}}}}\n"
    ),
    "flat": lambda c, n: (
        '  - {id: g.flat, kind: close_by_time, outcome: lock, params: {timezone: America/Chicago, flat_by: "05:30", reopen_at: "07:00"}}\n'
    ),
    "fifo": lambda c, n: "  - {id: g.fifo, kind: fifo_close, outcome: deny}\n",
    "mco": lambda c, n: (
        f"  - {{id: g.mco, kind: margin_close_out, outcome: breach, terminal: false, breach_when: {c}, params: {{pct: {n * 10}}}}}\n"
    ),
    "wk": lambda c, n: "  - {id: g.wk, kind: weekend_close, outcome: breach}\n",
}


@st.composite
def profiles(draw: st.DrawFn) -> str:
    chosen = draw(st.lists(st.sampled_from(sorted(RULES)), min_size=1, max_size=8, unique=True))
    return "".join(RULES[name](draw(CMP), draw(st.integers(1, 6))) for name in sorted(chosen))


MONEY = st.sampled_from(
    [
        D("90000"),
        D("94000"),
        D("94999.99"),
        D("95000"),
        D("95000.01"),
        D("97000"),
        D("100000"),
        D("104000"),
        D("106000"),
    ]
)
SIDES = st.sampled_from(["buy", "sell"])
SYMBOLS = st.sampled_from(["EURUSD", "AUDUSD", "XAUUSD", "GBPUSD"])
AT = dt.datetime(2026, 5, 12, 11, 0, tzinfo=UTC)


@st.composite
def positions(draw: st.DrawFn) -> list[Position]:
    count = draw(st.integers(0, 3))
    return [
        Position(
            id=f"p{i}",
            symbol=draw(SYMBOLS),
            side=draw(SIDES),
            size=D(draw(st.integers(1, 4))),
            entry=D("1.1"),
            stop_loss=draw(st.sampled_from([None, D("1.09"), D("1.05")])),
            opened_at=AT - dt.timedelta(hours=i + 1),
            margin=draw(st.sampled_from([D(1000), D(50000)])),
        )
        for i in range(count)
    ]


@st.composite
def states(draw: st.DrawFn) -> AccountState:
    return AccountState(
        balance=draw(MONEY),
        equity=draw(MONEY),
        initial_balance=D(100000),
        day_start=DaySnapshot(at=dt.datetime(2026, 5, 11, 22, tzinfo=UTC), balance=draw(MONEY)),
        eod_balances=[EodBalance(day=dt.date(2026, 5, 8), balance=draw(MONEY))],
        positions=draw(positions()),
        news_calendar=[
            NewsEvent(
                event="NFP",
                release_at=AT + dt.timedelta(minutes=draw(st.integers(-4, 4))),
                targeted_instruments=["EURUSD", "XAUUSD"],
            )
        ],
        daily_pnl=[DailyPnl(day=dt.date(2026, 5, d), pnl=D(draw(st.integers(-500, 3000)))) for d in (4, 5, 6)],
    )


@st.composite
def orders(draw: st.DrawFn) -> Order:
    return Order(
        symbol=draw(SYMBOLS),
        side=draw(SIDES),
        size=D(draw(st.integers(1, 5))),
        at=AT,
        price=D("1.1"),
        stop_loss=draw(st.sampled_from([None, D("1.09"), D("1.0")])),
        requested_leverage=D(draw(st.sampled_from([5, 10, 20, 30]))),
        intent=draw(st.sampled_from(["open", "open", "close"])),
        quote_to_account=D(1),
        position_id=draw(st.sampled_from([None, "p0", "p1", "p2"])),
    )


def comparable(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = result.to_dict()
    out["profile"].pop("backend")
    return out


@needs_durable
@settings(max_examples=int(os.environ.get("SIGNALOS_DIFFERENTIAL_EXAMPLES", "40")), deadline=None)
@given(rules=profiles(), state=states(), order=orders(), equity=MONEY)
def test_backends_decide_identically(rules: str, state: AccountState, order: Order, equity: D) -> None:
    profile = make_profile(rules)
    python, durable = Engine(profile, backend="python"), Engine(profile, backend="durable")
    assert comparable(python.check(state, order)) == comparable(durable.check(state, order))
    for event in (
        EquityUpdate(at=AT, equity=equity),
        ClockEvent(at=AT, event="weekend_market_close"),
        ClockEvent(at=AT + dt.timedelta(hours=12), event="day_boundary"),
    ):
        assert comparable(python.observe(state, event)) == comparable(durable.observe(state, event))


SIZE_RULES = (
    "  - {id: g.size, kind: max_position_size, outcome: deny, breach_when: gt, params: {max: 6}}\n"
    "  - {id: g.lev, kind: leverage_cap, outcome: deny, breach_when: gt, "
    "params: {regime: esma, classes: [major_fx, non_major_fx, gold], max_leverage: 20}}\n"
)
SIZE_ENGINE = Engine(make_profile(SIZE_RULES))


@settings(max_examples=60, deadline=None)
@given(
    state=states(),
    base=orders(),
    sizes=st.tuples(st.integers(1, 8), st.integers(0, 4)),
    leverages=st.tuples(st.integers(1, 40), st.integers(0, 20)),
)
def test_smaller_order_never_denied_where_larger_allowed(
    state: AccountState, base: Order, sizes: tuple[int, int], leverages: tuple[int, int]
) -> None:
    small, extra = sizes
    lev_small, lev_extra = leverages
    smaller = msgspec.structs.replace(base, size=D(small), requested_leverage=D(lev_small))
    larger = msgspec.structs.replace(base, size=D(small + extra), requested_leverage=D(lev_small + lev_extra))
    if SIZE_ENGINE.check(state, larger).allowed:
        assert SIZE_ENGINE.check(state, smaller).allowed


ALL_RULES = "".join(RULES[name]("lt", 3) for name in sorted(RULES))
ALL_ENGINE = Engine(make_profile(ALL_RULES))


@settings(max_examples=60, deadline=None)
@given(state=states(), order=orders(), data=st.data())
def test_decision_independent_of_position_order(state: AccountState, order: Order, data: st.DataObject) -> None:
    shuffled = msgspec.structs.replace(state, positions=data.draw(st.permutations(state.positions)))
    assert comparable(ALL_ENGINE.check(state, order)) == comparable(ALL_ENGINE.check(shuffled, order))


@settings(max_examples=40, deadline=None)
@given(state=states(), hours=st.integers(0, 60))
def test_day_reset_twice_equals_once(state: AccountState, hours: int) -> None:
    event = ClockEvent(at=AT + dt.timedelta(hours=hours), event="day_boundary")
    once = ALL_ENGINE.observe(state, event)
    twice = ALL_ENGINE.observe(once.next_state, event)
    assert twice.next_state == once.next_state
    assert once.next_state.day_start is not None
    assert once.next_state.day_start.at == ALL_ENGINE.clock.current_start(event.at)
