"""Fixtures for compliance tests: an inline-profile factory, common timestamps and the scenario-format mapping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from signalos_core.compliance import (
    AccountState,
    ClockEvent,
    ClosedTrade,
    DailyPnl,
    DaySnapshot,
    DayTrade,
    Decision,
    Enforcement,
    Engine,
    EodBalance,
    EquityUpdate,
    Fill,
    HighWaterMarks,
    Lock,
    NewsEvent,
    Order,
    PendingOrder,
    Position,
    Profile,
    available_backends,
    load_profile,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 5, 12, 10, 0, tzinfo=UTC)


def make_profile(rules: str, *, tz: str = "Europe/Prague", at: str = "00:00", extra: str = "") -> Profile:
    """A profile from an indented YAML rules block."""
    text = (
        f'id: test-profile\nversion: "t1"\neffective_from: 2026-01-01\n'
        f"parameters: {{account_size: {{type: money, default: 100000}}}}\n{extra}"
        f'day_boundary: {{timezone: {tz}, at: "{at}"}}\nrules:\n{rules}'
    )
    return load_profile(text)


@pytest.fixture
def engine_for() -> Callable[..., Engine]:
    """Build an :class:`Engine` from a rules block (python backend unless asked)."""

    def build(rules: str, *, backend: str = "python", **kw: str) -> Engine:
        return Engine(make_profile(rules, **kw), backend=backend, explain_passed=True)  # type: ignore[arg-type]

    return build


def state(**kw: object) -> AccountState:
    """An AccountState with 100k defaults."""
    base: dict[str, object] = {"balance": Decimal(100000), "initial_balance": Decimal(100000)}
    base.update(kw)
    return AccountState(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------------
# Scenario mapping: the shared scenario format (shared/reference/compliance-scenarios-dev.yaml) onto the engine's
# models. Used by test_scenarios.py (the dev set) and test_rule_texts.py (rule-text probes in the same format).

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "reference" / "compliance-scenarios-dev.yaml"
COPY = Path(__file__).parent / "data" / "compliance-scenarios-dev.yaml"
SOURCE = SHARED if SHARED.exists() else COPY
#: Profile definitions of the scenario format (initial balances are read from them).
DEV_PROFILES: dict[str, Any] = yaml.safe_load(SOURCE.read_text("utf-8"))["profiles"] if SOURCE.exists() else {}

PROFILES = {
    "ftmo_challenge_100k": "ftmo-2step-challenge",
    "ftmo_verification_100k": "ftmo-2step-verification",
    "ftmo_account_100k_standard": "ftmo-account-standard",
    "ftmo_account_100k_swing": "ftmo-account-swing",
    "ftmo_1step_challenge_100k": "ftmo-1step-challenge",
    "the5ers_high_stakes_100k": "the5ers-high-stakes",
    "the5ers_bootcamp_100k": "the5ers-bootcamp",
    "topstep_50k_combine": "topstep-combine-50k",
    "topstep_50k_combine_topstepx": "topstep-combine-50k-topstepx",
    "topstep_50k_xfa": "topstep-xfa-50k",
    "e8_one_100k": "e8-one",
    "fundednext_stellar_2step_100k": "fundednext-stellar-2step",
    "esma_retail": "esma-retail",
    "asic_retail": "asic-retail",
    "nfa_us_retail": "nfa-us-retail-forex",
    "finra_pdt": "finra-pdt-legacy",
    "finra_4210_intraday_2026": "finra-intraday-2026",
}

#: Both backends; durable is skipped where durable-rules cannot be imported.
SCENARIO_BACKENDS = [
    "python",
    pytest.param(
        "durable",
        marks=pytest.mark.skipif(
            available_backends()["durable"] is not None, reason="durable-rules cannot be imported on this Python"
        ),
    ),
]


def D(value: Any) -> Decimal | None:  # noqa: N802 - reads like the Decimal constructor it wraps
    return None if value is None else Decimal(str(value))


def T(value: Any) -> dt.datetime:  # noqa: N802 - short converter used in tables
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


SIZE_KEYS = ("lots", "contracts", "shares", "size", "quantity", "qty", "volume")
#: Action types fed to ``check`` (orders) and to ``observe`` as fills; other types with an ``equity`` are equity
#: updates, the rest clock events. Synonyms a scenario author may use are included.
ORDER_TYPES = frozenset(
    {"new_order", "order", "market_order", "place_order", "pending_order", "limit_order", "stop_order"}
    | {"close_position", "close_order", "close", "modify_order", "reduce_order", "partial_close"}
)
FILL_TRIGGERS = {
    "fill": None,
    "order_fill": None,
    "execution": None,
    "close_fill": None,
    "position_closed": None,
    "trade_closed": None,
    "sl_fill": "stop_loss",
    "stop_loss_fill": "stop_loss",
    "sl_hit": "stop_loss",
    "tp_fill": "take_profit",
    "take_profit_fill": "take_profit",
    "tp_hit": "take_profit",
    "pending_activation": "pending",
    "pending_fill": "pending",
}


def _size(item: dict[str, Any]) -> Decimal:
    for key in SIZE_KEYS:
        if key in item:
            return Decimal(str(item[key]))
    raise KeyError("size")


def _initial(profile_key: str) -> Decimal | None:
    spec = DEV_PROFILES[profile_key]
    while True:
        for key in ("initial_balance", "starting_balance"):
            if key in spec:
                return D(spec[key])
        if "inherits" not in spec:
            return None
        spec = DEV_PROFILES[spec["inherits"]]


def _first(raw: dict[str, Any], *keys: str) -> Any:
    return next((raw[k] for k in keys if raw.get(k) is not None), None)


def _position(p: dict[str, Any]) -> Position:
    return Position(
        id=str(p.get("id", p.get("ticket", p["symbol"]))),
        symbol=p["symbol"],
        side=p.get("side", "buy"),
        size=_size(p),
        entry=D(p.get("entry")),
        stop_loss=D(p.get("stop_loss")),
        take_profit=D(p.get("take_profit")),
        mark=D(p.get("mark")),
        floating_pnl=D(p.get("floating_pnl")),
        margin=D(_first(p, "margin", "initial_margin")),
        opened_at=T(p["opened_at"]) if p.get("opened_at") else None,
    )


def _trade(t: dict[str, Any]) -> ClosedTrade:
    return ClosedTrade(
        id=str(t.get("id", t["symbol"])),
        symbol=t["symbol"],
        side=t.get("side", "buy"),
        size=_size(t),
        net_pnl=Decimal(str(_first(t, "net_pnl", "pnl"))),
        closed_at=T(t["closed_at"]),
        opened_at=T(t["opened_at"]) if t.get("opened_at") else None,
        entry=D(t.get("entry")),
        exit=D(t.get("exit")),
    )


def _day_start(raw: dict[str, Any], initial: Decimal | None, clock_at: dt.datetime | None) -> DaySnapshot | None:
    day = raw.get("start_of_day") or raw.get("session_start") or raw.get("day_start")
    if day:
        return DaySnapshot(at=T(day["at"]), balance=Decimal(str(day["balance"])), equity=D(day.get("equity")))
    scalar = _first(raw, "day_start_balance", "start_of_day_balance", "midnight_balance", "session_start_balance")
    if scalar is not None and clock_at is not None:
        return DaySnapshot(at=clock_at, balance=Decimal(str(scalar)), equity=D(raw.get("day_start_equity")))
    if raw.get("eod_profit") is not None and initial is not None and clock_at is not None:
        return DaySnapshot(at=clock_at, balance=initial + Decimal(str(raw["eod_profit"])))
    return None


def build_state(raw: dict[str, Any], profile_key: str, engine: Engine | None = None) -> AccountState:
    """Map a scenario's state block onto :class:`AccountState`."""
    initial = D(raw["initial_balance"]) if raw.get("initial_balance") is not None else _initial(profile_key)
    balance = _first(raw, "balance", "equity", "equity_prior_close") or 0
    as_of = T(raw["as_of"])
    start = engine.clock.current_start(as_of) if engine is not None else None
    locks = [
        Lock(
            rule_id=p["rule"],
            kind="breach" if p.get("outcome") == "breach" else "lock",
            since=T(p["at"]),
            until=T(p["lock_until"]) if p.get("lock_until") else None,
        )
        for p in raw.get("prior_decisions", [])
        if p.get("outcome") in ("lock", "breach")
    ]
    return AccountState(
        balance=Decimal(str(balance)),
        equity=D(raw.get("equity")),
        as_of=as_of,
        initial_balance=initial,
        positions=[_position(p) for p in raw.get("open_positions", [])],
        pending_orders=[
            PendingOrder(
                id=str(o.get("id", o["symbol"])),
                symbol=o["symbol"],
                side=o.get("side", "buy"),
                size=_size(o),
                price=D(_first(o, "price", "entry")),
                stop_loss=D(o.get("stop_loss")),
                take_profit=D(o.get("take_profit")),
                placed_at=T(o["placed_at"]) if o.get("placed_at") else None,
            )
            for o in raw.get("pending_orders", [])
        ],
        closed_trades=[
            _trade(t) for key in ("closed_since_reopen", "closed_trades", "closed_today") for t in raw.get(key, [])
        ],
        day_start=_day_start(raw, initial, start),
        eod_balances=[
            EodBalance(day=_day(e["day"]), balance=Decimal(str(e["balance"])))
            for e in raw.get("eod_balance_history", raw.get("eod_balances", []))
        ],
        daily_pnl=[
            DailyPnl(day=_day(e["day"]), pnl=Decimal(str(e["pnl"])))
            for e in raw.get("daily_profit", raw.get("daily_pnl", []))
        ],
        high_water=HighWaterMarks(
            closed_balance=D(
                _first(
                    raw,
                    "high_water_mark_closed_balance",
                    "hwm_closed_balance",
                    "high_water_mark",
                    "closed_balance_high",
                )
            ),
            equity=D(_first(raw, "equity_high_water_mark", "peak_equity", "equity_high")),
        ),
        trading_days=[_day(d) for d in raw.get("trading_days", [])],
        day_trades=[DayTrade(date=_day(d["date"]), symbol=d["symbol"]) for d in raw.get("day_trades", [])],
        total_trades_in_window=raw.get("total_trades_in_window"),
        market_holidays=[_day(d) for d in raw.get("market_holidays", [])],
        news_calendar=[
            NewsEvent(
                event=n["event"],
                release_at=T(n["release_at"]),
                restricted=n.get("restricted", True),
                targeted_instruments=n.get("targeted_instruments", []),
            )
            for n in raw.get("news_calendar", [])
        ],
        account_type=raw.get("account_type", "margin"),
        equity_prior_close=D(raw.get("equity_prior_close")),
        total_initial_margin=D(raw.get("total_initial_margin")),
        maintenance_margin=D(
            _first(raw, "maintenance_margin", "maintenance_requirement", "intraday_margin_requirement")
        ),
        locks=locks,
        created_at=_created_at(raw, profile_key),
        currency=_profile_value(raw, profile_key, "currency") or "USD",
    )


def _profile_value(raw: dict[str, Any], profile_key: str, key: str) -> Any:
    """``key`` from the state, else from the scenario profile (following ``inherits``)."""
    value = raw.get(key)
    spec = DEV_PROFILES.get(profile_key, {})
    while value is None and spec:
        value = spec.get(key)
        spec = DEV_PROFILES.get(spec.get("inherits", ""), {})
    return value


def _created_at(raw: dict[str, Any], profile_key: str) -> dt.datetime | None:
    """The account's opening date: the state's, else the scenario profile's ``account_created_at``."""
    value = raw.get("created_at") or _profile_value(raw, profile_key, "account_created_at")
    return None if value is None else T(value)


def run(engine: Engine, state: AccountState, action: dict[str, Any]) -> Decision | Enforcement:
    """Feed the scenario's action: an order through ``check``, anything else through ``observe``."""
    at = T(action["at"])
    kind = action["type"]
    if kind in ORDER_TYPES:
        closing = kind in (
            "close_position",
            "close_order",
            "close",
            "modify_order",
            "reduce_order",
            "partial_close",
        ) or str(action.get("intent", "")).startswith(("close", "reduce"))
        ticket = _first(action, "position_id", "ticket", "close_ticket", "closes")
        target = next((p for p in state.positions if p.id == ticket), None)
        opposite = {"buy": "sell", "sell": "buy"}
        order = Order(
            symbol=action.get("symbol") or (target.symbol if target else ""),
            side=action.get("side") or (opposite[target.side] if target else "sell"),
            size=_size(action) if any(k in action for k in SIZE_KEYS) or target is None else target.size,
            at=at,
            order_type=action["order_type"]
            if action.get("order_type") in ("market", "limit", "stop")
            else (
                "limit" if kind in ("pending_order", "limit_order") else "stop" if kind == "stop_order" else "market"
            ),
            price=D(_first(action, "expected_entry", "price", "entry")),
            stop_loss=D(_first(action, "stop_loss", "sl")),
            take_profit=D(_first(action, "take_profit", "tp")),
            requested_leverage=D(action.get("requested_leverage")),
            margin=D(_first(action, "margin", "initial_margin")),
            margin_requirement=D(_first(action, "margin_requirement", "additional_margin")),
            quote_to_account=D(action.get("quote_to_account")),
            position_id=ticket,
            same_size_request=bool(
                _first(action, "same_size_request", "customer_request_same_size", "customer_request")
            ),
            intent="close" if closing else "open",
        )
        return engine.check(state, order)
    if kind in FILL_TRIGGERS:
        ticket = action.get("position_id")
        target = next((p for p in state.positions if p.id == ticket), None)
        opposite = {"buy": "sell", "sell": "buy"}
        return engine.observe(
            state,
            Fill(
                at=at,
                symbol=action.get("symbol") or (target.symbol if target else ""),
                side=action.get("side") or (opposite[target.side] if target else "buy"),
                size=_size(action) if any(k in action for k in SIZE_KEYS) or target is None else target.size,
                price=Decimal(str(_first(action, "price", "fill_price", "exit", "entry"))),
                action="close" if action.get("net_pnl") is not None or ticket else "open",
                position_id=ticket,
                net_pnl=D(action.get("net_pnl")),
                trigger=FILL_TRIGGERS[kind] or action.get("trigger", "market"),
            ),
        )
    if action.get("equity") is not None:
        return engine.observe(
            state, EquityUpdate(at=at, equity=Decimal(str(action["equity"])), balance=D(action.get("balance")))
        )
    return engine.observe(
        state,
        ClockEvent(
            at=at,
            event=_clock_event(str(action.get("event", kind))),
            instruments_closing=action.get("instruments_closing", []),
        ),
    )


CLOCK_EVENTS = frozenset(
    {"day_boundary", "weekend_market_close", "market_break", "position_time_check", "objectives_evaluation"}
)
CLOCK_SYNONYMS = {
    "daily_reset": "day_boundary",
    "day_reset": "day_boundary",
    "session_start": "day_boundary",
    "new_session": "day_boundary",
    "midnight": "day_boundary",
    "end_of_day": "day_boundary",
    "eod": "day_boundary",
    "weekend_close": "weekend_market_close",
    "friday_close": "weekend_market_close",
    "market_close": "weekend_market_close",
    "objectives": "objectives_evaluation",
    "evaluate_objectives": "objectives_evaluation",
}


def _clock_event(name: str) -> Any:
    """The engine's clock event for a scenario's event name; anything else is a plain time check."""
    name = CLOCK_SYNONYMS.get(name, name)
    return name if name in CLOCK_EVENTS else "position_time_check"


def violated(result: Decision | Enforcement) -> set[str]:
    """Rule ids reported as violated (blocking or not)."""
    return {f.rule_id for f in result.fired} | {w.rule_id for w in result.warnings if w.reason == "violated"}


def outcome(result: Decision | Enforcement) -> str:
    if isinstance(result, Decision):
        return result.outcome
    return "allow" if result.outcome == "warn" else result.outcome


#: ``computed`` keys read as instants and as lists of dates.
TIME_KEYS = frozenset(
    {"day_boundary_utc", "local_time", "flat_by", "lock_until", "session_start_utc", "day_start_utc", "reset_utc"}
)
LIST_KEYS = frozenset({"business_days", "window"})


def _rows(result: Decision | Enforcement) -> tuple[dict[str, Any], dict[str, str]]:
    rows = [*result.fired, *result.warnings, *result.evaluated]
    by_kind: dict[str, Any] = {}
    for row in rows:
        by_kind.setdefault(row.kind, row)
    extras: dict[str, str] = {}
    for row in rows:
        extras.update(row.extra)
    if isinstance(result, Enforcement):
        for status in result.objectives:
            extras.update(status.extra)
    return by_kind, extras


def _lock_until(result: Decision | Enforcement) -> Any:
    if isinstance(result, Enforcement):
        return next(a.until for a in result.actions if a.type == "lock")
    return next(f for f in result.fired if f.reason == "locked").extra.get("until")


def _contracts(by_kind: dict[str, Any], field: str) -> Any:
    row = by_kind.get("scaling_plan") or by_kind["max_position_size"]
    return getattr(row, field)


#: ``computed`` key -> how to read it from a decision (synonyms a scenario author may use included).
EXTRACTORS: dict[str, Any] = {
    "daily_floor": lambda k, x, r: k["daily_loss"].threshold,
    "dll_floor": lambda k, x, r: k["daily_loss"].threshold,
    "daily_loss_floor": lambda k, x, r: k["daily_loss"].threshold,
    "daily_drawdown_floor": lambda k, x, r: k["daily_loss"].threshold,
    "daily_base": lambda k, x, r: k["daily_loss"].base,
    "day_start_balance": lambda k, x, r: k["daily_loss"].base,
    "session_start_balance": lambda k, x, r: k["daily_loss"].base,
    "day_boundary_utc": lambda k, x, r: k["daily_loss"].base_at,
    "session_start_utc": lambda k, x, r: k["daily_loss"].base_at,
    "day_start_utc": lambda k, x, r: k["daily_loss"].base_at,
    "reset_utc": lambda k, x, r: k["daily_loss"].base_at,
    "mll": lambda k, x, r: k["trailing_max_loss"].threshold,
    "trailing_floor": lambda k, x, r: k["trailing_max_loss"].threshold,
    "drawdown_floor": lambda k, x, r: k["trailing_max_loss"].threshold,
    "high_water_mark": lambda k, x, r: k["trailing_max_loss"].base,
    "hwm": lambda k, x, r: k["trailing_max_loss"].base,
    "max_loss_floor": lambda k, x, r: k["max_loss"].threshold,
    "static_floor": lambda k, x, r: k["max_loss"].threshold,
    "leverage_cap": lambda k, x, r: Decimal(x["leverage_cap"]),
    "requested_leverage": lambda k, x, r: k["leverage_cap"].measured,
    "initial_margin_pct": lambda k, x, r: Decimal(x["initial_margin_pct"]),
    "margin_level_pct": lambda k, x, r: Decimal(x["margin_level_pct"]),
    "close_out_level": lambda k, x, r: k["margin_close_out"].threshold,
    "best_day_share": lambda k, x, r: Decimal(x["best_day_share"]),
    "local_time": lambda k, x, r: T(x["local_time"]),
    "flat_by": lambda k, x, r: T(x["flat_by"]),
    "day_trades_in_window_incl_proposed": lambda k, x, r: k["pattern_day_trader"].measured,
    "business_days": lambda k, x, r: x["business_days"].split(","),
    "window": lambda k, x, r: x["window"].split(".."),
    "max_contracts": lambda k, x, r: _contracts(k, "threshold"),
    "allowed_contracts": lambda k, x, r: _contracts(k, "threshold"),
    "open_contracts": lambda k, x, r: _contracts(k, "measured"),
    "risk_at_sl": lambda k, x, r: k["max_risk_per_position"].measured,
    "risk_limit": lambda k, x, r: k["max_risk_per_position"].threshold,
    "intraday_requirement": lambda k, x, r: k["intraday_margin"].threshold,
    "lock_until": lambda k, x, r: _lock_until(r),
}


def computed_value(result: Decision | Enforcement, key: str) -> Any:
    """Extract a ``computed`` value from the explanation (``KeyError`` for a key without an extractor)."""
    by_kind, extras = _rows(result)
    value = EXTRACTORS[key](by_kind, extras, result)
    return T(value) if key in TIME_KEYS and isinstance(value, str) else value


def expected_value(key: str, value: Any) -> Any:
    """The scenario's expected ``computed`` value as the engine reports it."""
    if key in TIME_KEYS:
        return T(value)
    if key in LIST_KEYS:
        return [str(v) for v in value]
    return Decimal(str(value))
