"""State transitions for monitoring: apply an event, roll the trading day, expire locks.

All functions are pure (they return a new :class:`AccountState`) and idempotent where the domain demands it:
rolling the day twice for the same instant equals rolling it once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from signalos_core._errors import EvaluationError
from signalos_core.compliance._calendar import DayClock
from signalos_core.compliance._instruments import InstrumentCatalog
from signalos_core.compliance._kinds_base import Ctx
from signalos_core.compliance._models import (
    AccountState,
    ClockEvent,
    ClosedTrade,
    DaySnapshot,
    EodBalance,
    EquityUpdate,
    Event,
    Fill,
    HighWaterMarks,
    Lock,
    Position,
)

__all__ = ["apply_event", "expire_locks", "roll_day"]

_TICK = dt.timedelta(microseconds=1)
replace = msgspec.structs.replace


def roll_day(
    state: AccountState,
    at: dt.datetime,
    clock: DayClock,
    catalog: InstrumentCatalog,
    *,
    boundary_equity: Decimal | None = None,
) -> AccountState:
    """Start a new trading day if ``at`` is past the snapshot's day: new day base and yesterday's EOD balance."""
    start = clock.current_start(at)
    if state.day_start is not None and state.day_start.at >= start:
        return state
    ctx = Ctx(state, at, clock=clock, catalog=catalog, default_initial=None)
    balance, equity = ctx.day_base()
    assert balance is not None  # noqa: S101 - the boundary balance is always reconstructable
    if equity is None:
        equity = boundary_equity
    snapshot = DaySnapshot(at=start, balance=balance, equity=equity)
    eods = state.eod_balances
    previous_day = clock.trading_day(start - _TICK)
    if not any(e.day == previous_day for e in eods):
        eods = sorted([*eods, EodBalance(day=previous_day, balance=balance)], key=lambda e: e.day)
    return replace(state, day_start=snapshot, eod_balances=eods)


def expire_locks(state: AccountState, at: dt.datetime) -> tuple[AccountState, list[Lock]]:
    """Drop day locks whose ``until`` has passed; breaches never expire."""
    kept: list[Lock] = []
    gone: list[Lock] = []
    for lock in state.locks:
        if lock.kind == "lock" and lock.until is not None and at >= lock.until:
            gone.append(lock)
        else:
            kept.append(lock)
    if not gone:
        return state, []
    return replace(state, locks=kept), gone


def _high_water(state: AccountState) -> HighWaterMarks:
    hw = state.high_water
    closed = state.balance if hw.closed_balance is None else max(hw.closed_balance, state.balance)
    equity = hw.equity
    if state.equity is not None:
        equity = state.equity if equity is None else max(equity, state.equity)
    return HighWaterMarks(closed_balance=closed, equity=equity)


def _realised(state: AccountState, fill: Fill, target: Position, catalog: InstrumentCatalog) -> Decimal:
    """P/L of closing ``fill.size`` of ``target`` at ``fill.price`` (gross; give ``net_pnl`` for commissions)."""
    if fill.net_pnl is not None:
        return fill.net_pnl
    inst = catalog.get(fill.symbol, field="event.symbol")
    if target.entry is None or inst.quote != state.currency:
        raise EvaluationError("a closing fill needs net_pnl (entry or quote conversion unknown)", field="event.net_pnl")
    direction = 1 if target.side == "buy" else -1
    size = min(fill.size, target.size)
    return (fill.price - target.entry) * direction * size * inst.value_per_point


def _close(state: AccountState, fill: Fill, catalog: InstrumentCatalog) -> AccountState:
    positions = list(state.positions)
    candidates = (
        [p for p in positions if p.id == fill.position_id]
        if fill.position_id
        else sorted(
            (p for p in positions if p.symbol == fill.symbol and p.side != fill.side),
            key=lambda p: (p.opened_at or fill.at, p.id),
        )
    )
    if not candidates:
        raise EvaluationError(f"no open position to close for {fill.symbol}", field="event.position_id")
    target = candidates[0]
    pnl = _realised(state, fill, target, catalog)
    positions.remove(target)
    if fill.size < target.size:
        positions.append(replace(target, size=target.size - fill.size))
    trade = ClosedTrade(
        id=target.id,
        symbol=target.symbol,
        side=target.side,
        size=min(fill.size, target.size),
        net_pnl=pnl,
        closed_at=fill.at,
        opened_at=target.opened_at,
        entry=target.entry,
        exit=fill.price,
    )
    balance = state.balance + pnl
    return replace(state, positions=positions, closed_trades=[*state.closed_trades, trade], balance=balance)


def apply_event(state: AccountState, event: Event, clock: DayClock, catalog: InstrumentCatalog) -> AccountState:
    """The state after ``event``: new equity, an opened or closed position, the day rolled, marks updated."""
    boundary_equity: Decimal | None = None
    if isinstance(event, EquityUpdate):
        state = replace(state, equity=event.equity, balance=state.balance if event.balance is None else event.balance)
    elif isinstance(event, Fill):
        if event.action == "open":
            pos = Position(
                id=event.position_id or f"{event.symbol}@{event.at.isoformat()}",
                symbol=event.symbol,
                side=event.side,
                size=event.size,
                entry=event.price,
                stop_loss=event.stop_loss,
                take_profit=event.take_profit,
                opened_at=event.at,
            )
            day = clock.trading_day(event.at)
            days = state.trading_days if day in state.trading_days else sorted([*state.trading_days, day])
            state = replace(state, positions=[*state.positions, pos], trading_days=days)
        else:
            state = _close(state, event, catalog)
    elif isinstance(event, ClockEvent) and event.event == "day_boundary":
        boundary_equity = state.equity
    state = roll_day(state, event.at, clock, catalog, boundary_equity=boundary_equity)
    return replace(state, high_water=_high_water(state), as_of=event.at)
