"""Pre-trade check latency of the compliance engine vs a hand-written FTMO check, in the same run.

Run: ``.venv/bin/python benchmarks/bench_compliance.py [--iterations N]``. Prints p50/p99 latency (µs) and
checks/s for the FTMO 2-Step profile and a generated 50-rule profile on both backends, with the ratio to a
hand-written Python function doing the same FTMO checks (input validation, Prague day boundary, daily and
maximum loss floors, locks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

from signalos_core.compliance import (
    AccountState,
    DaySnapshot,
    Engine,
    Order,
    Position,
    available_backends,
    load_builtin_profile,
    load_profile,
)

D = Decimal
PRAGUE = ZoneInfo("Europe/Prague")
AT = dt.datetime(2026, 5, 12, 11, 20, tzinfo=dt.UTC)
STATE = AccountState(
    balance=D("99500.00"),
    equity=D("98750.25"),
    initial_balance=D("100000.00"),
    day_start=DaySnapshot(at=dt.datetime(2026, 5, 11, 22, 0, tzinfo=dt.UTC), balance=D("100000.00")),
    positions=[
        Position(
            id="p1",
            symbol="EURUSD",
            side="buy",
            size=D("1.5"),
            entry=D("1.085"),
            stop_loss=D("1.08"),
            opened_at=AT - dt.timedelta(hours=2),
            floating_pnl=D("-450.00"),
        ),
        Position(
            id="p2",
            symbol="XAUUSD",
            side="sell",
            size=D("0.2"),
            entry=D("2350"),
            stop_loss=D("2360"),
            opened_at=AT - dt.timedelta(hours=1),
            floating_pnl=D("-299.75"),
        ),
    ],
)
ORDER = Order(
    symbol="EURUSD",
    side="buy",
    size=D("1.0"),
    at=AT,
    price=D("1.0850"),
    stop_loss=D("1.0800"),
    requested_leverage=D(30),
    quote_to_account=D(1),
)


def hand_written_ftmo(state: AccountState, order: Order) -> tuple[bool, list[str]]:
    """The same FTMO 2-Step pre-trade checks written directly (the baseline).

    Like the engine it fails closed on bad input (aware times, finite numbers, sizes) before deciding.
    """
    if order.at.utcoffset() is None or not order.size.is_finite() or order.size <= 0:
        raise ValueError("bad order")
    for value in (order.price, order.stop_loss, order.requested_leverage):
        if value is not None and not value.is_finite():
            raise ValueError("bad order")
    if not state.balance.is_finite() or (state.equity is not None and not state.equity.is_finite()):
        raise ValueError("bad state")
    for pos in state.positions:
        if (
            not pos.size.is_finite()
            or pos.size < 0
            or (pos.opened_at is not None and pos.opened_at.utcoffset() is None)
        ):
            raise ValueError("bad position")
        for value in (pos.entry, pos.stop_loss, pos.floating_pnl):
            if value is not None and not value.is_finite():
                raise ValueError("bad position")
    fired: list[str] = []
    if order.intent == "open":
        fired.extend(
            lock.rule_id
            for lock in state.locks
            if lock.kind == "breach" or (lock.until is not None and order.at < lock.until)
        )
        initial = state.initial_balance or D(100000)
        local = order.at.astimezone(PRAGUE)
        start = dt.datetime.combine(local.date(), dt.time(0), tzinfo=PRAGUE)
        snap = state.day_start
        base = snap.balance if snap is not None and snap.at >= start else state.balance
        equity = state.equity if state.equity is not None else state.balance
        if equity < base - initial * D(5) / D(100):
            fired.append("ftmo.max_daily_loss")
        if equity < initial - initial * D(10) / D(100):
            fired.append("ftmo.max_loss")
    return (not fired, fired)


def generated_profile(rule_count: int = 50) -> str:
    """A profile with ``rule_count`` rules cycling through loss, size, leverage, risk and time kinds."""
    templates = [
        "  - {{id: gen.r{i:02d}, kind: daily_loss, outcome: breach, breach_when: lt, warn_at: [0.8], params: {{pct: {p}}}}}\n",
        "  - {{id: gen.r{i:02d}, kind: max_loss, outcome: breach, breach_when: le, params: {{pct: {q}}}}}\n",
        "  - {{id: gen.r{i:02d}, kind: max_position_size, outcome: deny, breach_when: gt, params: {{max: {s}}}}}\n",
        "  - {{id: gen.r{i:02d}, kind: leverage_cap, outcome: deny, breach_when: gt, params: {{regime: esma, classes: [major_fx, gold], max_leverage: {lev}}}}}\n",
        "  - {{id: gen.r{i:02d}, kind: max_risk_per_position, outcome: deny, breach_when: gt, params: {{pct: {p}}}}}\n",
        "  - {{id: gen.r{i:02d}, kind: trailing_max_loss, outcome: lock, breach_when: lt, params: {{pct: {q}, trail_on: closed_balance, stop_at: initial}}}}\n",
        "  - {{id: gen.r{i:02d}, kind: stop_loss_required, outcome: deny}}\n",
        "  - {{id: gen.r{i:02d}, kind: no_hedging, outcome: deny}}\n",
        "  - {{id: gen.r{i:02d}, kind: allowed_instruments, outcome: deny, params: {{asset_classes: [fx, metal]}}}}\n",
        '  - {{id: gen.r{i:02d}, kind: close_by_time, outcome: deny, params: {{timezone: America/Chicago, flat_by: "15:10", reopen_at: "17:00"}}}}\n',
    ]
    rules = "".join(
        templates[i % len(templates)].format(i=i, p=1 + i % 9, q=8 + i % 5, s=5 + i % 20, lev=20 + i % 20)
        for i in range(rule_count)
    )
    return (
        f'id: gen-{rule_count}\nversion: "1"\neffective_from: 2026-01-01\n'
        f"parameters: {{account_size: {{type: money, default: 100000}}}}\n"
        f'day_boundary: {{timezone: Europe/Prague, at: "00:00"}}\nrules:\n{rules}'
    )


def _stats(samples: list[int]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50": samples[len(samples) // 2] / 1000,
        "p99": samples[int(len(samples) * 0.99)] / 1000,
        "per_s": 1e9 / statistics.fmean(samples),
    }


def measure(cases: dict[str, Callable[[], object]], iterations: int) -> dict[str, dict[str, float]]:
    """Per-call latency (µs) percentiles and throughput, the cases interleaved call by call.

    Interleaving makes a load spike on the shared machine hit every case alike, so the ratios stay fair.
    """
    for fn in cases.values():
        for _ in range(min(300, iterations)):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in cases}
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for _ in range(iterations):
            for name, fn in cases.items():
                t0 = clock()
                fn()
                samples[name].append(clock() - t0)
    finally:
        gc.enable()
    return {name: _stats(values) for name, values in samples.items()}


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    n = args.iterations
    ftmo = load_builtin_profile("ftmo-2step-challenge")
    gen = load_profile(generated_profile(50))
    if hand_written_ftmo(STATE, ORDER)[0] != Engine(ftmo).check(STATE, ORDER).allowed:
        raise SystemExit("baseline and engine disagree")
    runs = [("python", n)]
    if available_backends()["durable"] is None:
        runs.append(("durable", max(1000, n // 10)))
    print(
        f"compliance pre-trade check; cases interleaved call by call; python {n} iterations, durable {max(1000, n // 10)}"
    )
    print(
        f"{'case':22} {'backend':8} {'p50 µs':>9} {'p99 µs':>9} {'checks/s':>10} {'p50 vs hand':>12} {'p99 vs hand':>12}"
    )
    for backend, iterations in runs:
        engines = {
            name: Engine(profile, backend=backend)
            for name, profile in (("FTMO 2-Step", ftmo), ("generated 50 rules", gen))  # type: ignore[arg-type]
        }
        cases: dict[str, Callable[[], object]] = {"hand-written FTMO": lambda: hand_written_ftmo(STATE, ORDER)}
        cases.update({name: (lambda e=engine: e.check(STATE, ORDER)) for name, engine in engines.items()})
        results = measure(cases, iterations)
        base = results["hand-written FTMO"]
        for name, r in results.items():
            label = "-" if name.startswith("hand") else backend
            print(
                f"{name:22} {label:8} {r['p50']:9.2f} {r['p99']:9.2f} {r['per_s']:10.0f} "
                f"{r['p50'] / base['p50']:11.2f}x {r['p99'] / base['p99']:11.2f}x"
            )


if __name__ == "__main__":
    main()
