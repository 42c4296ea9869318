"""Every development scenario (shared/reference/compliance-scenarios-dev.yaml) through the public API, on both
backends. The scenario file is engine-neutral; this module maps its state/action onto the engine's models."""

from __future__ import annotations

import datetime as dt
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
    Lock,
    NewsEvent,
    Order,
    Position,
    available_backends,
    load_builtin_profile,
)

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "reference" / "compliance-scenarios-dev.yaml"
COPY = Path(__file__).parent / "data" / "compliance-scenarios-dev.yaml"
SOURCE = SHARED if SHARED.exists() else COPY

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
BACKENDS = ["python", pytest.param("durable", marks=pytest.mark.skipif(
    available_backends()["durable"] is not None, reason="durable-rules cannot be imported on this Python"))]


def _load() -> dict[str, Any]:
    if not SOURCE.exists():  # pragma: no cover - both copies missing is a broken checkout
        pytest.skip(f"scenario file not found at {SHARED} nor {COPY}")
    data: dict[str, Any] = yaml.safe_load(SOURCE.read_text("utf-8"))
    return data


DATA = _load()
SCENARIOS = DATA["scenarios"]


def D(value: Any) -> Decimal | None:  # noqa: N802 - reads like the Decimal constructor it wraps
    return None if value is None else Decimal(str(value))


def T(value: Any) -> dt.datetime:  # noqa: N802 - short converter used in tables
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _size(item: dict[str, Any]) -> Decimal:
    for key in ("lots", "contracts", "shares", "size"):
        if key in item:
            return Decimal(str(item[key]))
    raise KeyError("size")


def _initial(profile_key: str) -> Decimal | None:
    spec = DATA["profiles"][profile_key]
    while True:
        for key in ("initial_balance", "starting_balance"):
            if key in spec:
                return D(spec[key])
        if "inherits" not in spec:
            return None
        spec = DATA["profiles"][spec["inherits"]]


def build_state(raw: dict[str, Any], profile_key: str) -> AccountState:
    """Map a scenario's state block onto :class:`AccountState`."""
    day = raw.get("start_of_day") or raw.get("session_start")
    balance = raw.get("balance", raw.get("equity", raw.get("equity_prior_close", 0)))
    return AccountState(
        balance=Decimal(str(balance)),
        equity=D(raw.get("equity")),
        as_of=T(raw["as_of"]),
        initial_balance=_initial(profile_key),
        positions=[
            Position(id=p["id"], symbol=p["symbol"], side=p["side"], size=_size(p), entry=D(p.get("entry")),
                     stop_loss=D(p.get("stop_loss")), mark=D(p.get("mark")), floating_pnl=D(p.get("floating_pnl")),
                     opened_at=T(p["opened_at"]) if "opened_at" in p else None)
            for p in raw.get("open_positions", [])
        ],
        closed_trades=[
            ClosedTrade(id=t["id"], symbol=t["symbol"], side=t["side"], size=_size(t), net_pnl=Decimal(str(t["net_pnl"])),
                        closed_at=T(t["closed_at"]), opened_at=T(t["opened_at"]), entry=D(t.get("entry")),
                        exit=D(t.get("exit")))
            for t in raw.get("closed_since_reopen", []) + raw.get("closed_trades", [])
        ],
        day_start=DaySnapshot(at=T(day["at"]), balance=Decimal(str(day["balance"])), equity=D(day.get("equity")))
        if day else None,
        eod_balances=[EodBalance(day=_day(e["day"]), balance=Decimal(str(e["balance"])))
                      for e in raw.get("eod_balance_history", [])],
        daily_pnl=[DailyPnl(day=_day(e["day"]), pnl=Decimal(str(e["pnl"]))) for e in raw.get("daily_profit", [])],
        trading_days=[_day(d) for d in raw.get("trading_days", [])],
        day_trades=[DayTrade(date=_day(d["date"]), symbol=d["symbol"]) for d in raw.get("day_trades", [])],
        total_trades_in_window=raw.get("total_trades_in_window"),
        market_holidays=[_day(d) for d in raw.get("market_holidays", [])],
        news_calendar=[NewsEvent(event=n["event"], release_at=T(n["release_at"]), restricted=n.get("restricted", True),
                                 targeted_instruments=n.get("targeted_instruments", []))
                       for n in raw.get("news_calendar", [])],
        account_type=raw.get("account_type", "margin"),
        equity_prior_close=D(raw.get("equity_prior_close")),
        total_initial_margin=D(raw.get("total_initial_margin")),
        locks=[Lock(rule_id=p["rule"], kind="lock", since=T(p["at"]), until=T(p["lock_until"]))
               for p in raw.get("prior_decisions", []) if p.get("outcome") == "lock"],
    )


def run(engine: Engine, state: AccountState, action: dict[str, Any]) -> Decision | Enforcement:
    """Feed the scenario's action: an order through ``check``, anything else through ``observe``."""
    at = T(action["at"])
    if action["type"] == "new_order":
        intent = "close" if str(action.get("intent", "")).startswith("close") else "open"
        order = Order(symbol=action["symbol"], side=action["side"], size=_size(action), at=at,
                      order_type=action.get("order_type", "market"), price=D(action.get("expected_entry")),
                      stop_loss=D(action.get("stop_loss")), requested_leverage=D(action.get("requested_leverage")),
                      intent=intent)
        return engine.check(state, order)
    if action["type"] == "equity_update":
        return engine.observe(state, EquityUpdate(at=at, equity=Decimal(str(action["equity"]))))
    assert action["type"] == "clock", action
    return engine.observe(state, ClockEvent(at=at, event=action["event"],
                                            instruments_closing=action.get("instruments_closing", [])))


def violated(result: Decision | Enforcement) -> set[str]:
    """Rule ids reported as violated (blocking or not)."""
    return {f.rule_id for f in result.fired} | {w.rule_id for w in result.warnings if w.reason == "violated"}


def outcome(result: Decision | Enforcement) -> str:
    if isinstance(result, Decision):
        return result.outcome
    return "allow" if result.outcome == "warn" else result.outcome


def _computed(result: Decision | Enforcement, key: str) -> Any:
    """Extract a ``computed`` value from the explanation; None when this mapping has no extractor."""
    rows = [*result.fired, *result.warnings, *result.evaluated]
    by_kind = {}
    for row in rows:
        by_kind.setdefault(row.kind, row)
    extras: dict[str, str] = {}
    for row in rows:
        extras.update(row.extra)
    if isinstance(result, Enforcement):
        for status in result.objectives:
            extras.update(status.extra)
    table = {
        "daily_floor": lambda: by_kind["daily_loss"].threshold,
        "dll_floor": lambda: by_kind["daily_loss"].threshold,
        "daily_base": lambda: by_kind["daily_loss"].base,
        "mll": lambda: by_kind["trailing_max_loss"].threshold,
        "day_boundary_utc": lambda: by_kind["daily_loss"].base_at,
        "leverage_cap": lambda: Decimal(extras["leverage_cap"]),
        "initial_margin_pct": lambda: Decimal(extras["initial_margin_pct"]),
        "margin_level_pct": lambda: Decimal(extras["margin_level_pct"]),
        "best_day_share": lambda: Decimal(extras["best_day_share"]),
        "local_time": lambda: T(extras["local_time"]),
        "day_trades_in_window_incl_proposed": lambda: by_kind["pattern_day_trader"].measured,
        "business_days": lambda: extras["business_days"].split(","),
        "window": lambda: extras["window"].split(".."),
        "flat_by": lambda: T(extras["flat_by"]),
    }
    return table[key]() if key in table else None


def _expected(key: str, value: Any) -> Any:
    if key in ("day_boundary_utc", "local_time", "flat_by"):
        return T(value)
    if key in ("business_days", "window"):
        return [str(v) for v in value]
    return Decimal(str(value))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_dev_scenario(scenario: dict[str, Any], backend: str) -> None:
    profile = load_builtin_profile(PROFILES[scenario["profile"]])
    engine = Engine(profile, backend=backend, explain_passed=True)  # type: ignore[arg-type]
    result = run(engine, build_state(scenario["state"], scenario["profile"]), scenario["action"])
    expected = scenario["expected"]
    fired = violated(result)
    assert outcome(result) == expected["outcome"], result.to_dict()
    assert set(expected.get("violations", [])) <= fired, result.to_dict()
    assert not set(expected.get("must_not_violate", [])) & fired, result.to_dict()
    if "objectives" in expected:
        assert isinstance(result, Enforcement)
        statuses = {o.rule_id: o.status for o in result.objectives}
        for rule_id, status in expected["objectives"].items():
            assert statuses[rule_id] == status, result.objectives
    checked = 0
    for key, value in expected.get("computed", {}).items():
        got = _computed(result, key)
        if got is not None:
            checked += 1
            assert got == _expected(key, value), (key, got, value)
    if expected["outcome"] != "allow":
        # Every deny/breach/lock names its profile version and rule numbers for the audit record.
        assert result.profile.version == profile.version
        assert len(result.profile.hash) == 64
        assert all(f.message for f in result.fired)
    assert checked == len(expected.get("computed", {})), "every computed value has an extractor"


def test_scenario_copy_matches_shared() -> None:
    """The CI copy must be the shared file (re-copy it when the reference changes)."""
    if not SHARED.exists():
        pytest.skip(f"shared reference not present at {SHARED}")
    assert COPY.read_bytes() == SHARED.read_bytes()


def test_every_rule_id_in_the_reference_exists_in_a_builtin_profile() -> None:
    ids: set[str] = set()
    for builtin in PROFILES.values():
        ids |= {r.id for r in load_builtin_profile(builtin).rules}
    assert set(DATA["rule_ids"]) <= ids, set(DATA["rule_ids"]) - ids
