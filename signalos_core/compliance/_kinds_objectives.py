"""Objective rule kinds: progress reports (profit target, minimum trading days, best-day/consistency), never
failures. An objective rule "fires" when it is met."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

from signalos_core.compliance._kinds_base import CMP, Ctx, Measure, Metric, Missing, Params, Phase, Slot, register

__all__ = ["BestDayParams", "MinTradingDaysParams", "ProfitTargetParams"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class _Params(Params, frozen=True, kw_only=True):
    """Base for kind params: strict and immutable."""


class ProfitTargetParams(_Params, frozen=True, kw_only=True):
    """Params of ``profit_target``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {
        "amount": (_ZERO, None),
        "pct": (_ZERO, None),
    }

    amount: Decimal | None = None
    pct: Decimal | None = None
    requires_flat: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.amount is None) == (self.pct is None):
            raise ValueError("give exactly one of `amount` or `pct` (percent of the initial balance)")


class MinTradingDaysParams(_Params, frozen=True, kw_only=True):
    """Params of ``min_trading_days``."""

    days: Annotated[int, msgspec.Meta(ge=1)]


class BestDayParams(_Params, frozen=True, kw_only=True):
    """Params of ``best_day_ratio``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"max_share_pct": (_ZERO, _HUNDRED)}

    max_share_pct: Decimal


@register(
    "profit_target",
    ProfitTargetParams,
    phases=("objective",),
    slots=(Slot("profit", "ge"), Slot("open_positions", "eq")),
)
def profit_target(ctx: Ctx, p: ProfitTargetParams, phase: Phase) -> Measure | Missing | None:
    """Met when the *closed* balance is at least initial + target (``amount``, or ``pct`` of initial) and, with
    ``requires_flat``, no position is open. Floating profit does not count."""
    if ctx.initial is None:
        return Missing("state.initial_balance")
    target = p.amount if p.amount is not None else ctx.initial * (p.pct or _ZERO) / _HUNDRED
    open_count = Decimal(len(ctx.state.positions)) if p.requires_flat else _ZERO
    return Measure(
        metrics=(
            Metric(ctx.state.balance - ctx.initial, target, "closed profit", "target"),
            Metric(open_count, _ZERO, "open positions", "required", money=False),
        ),
        base=ctx.initial,
        base_label="initial balance",
    )


def _trading_days(ctx: Ctx) -> set[dt.date]:
    days = set(ctx.state.trading_days)
    for pos in ctx.state.positions:
        if pos.opened_at is not None:
            days.add(ctx.clock.trading_day(pos.opened_at))
    for trade in ctx.state.closed_trades:
        if trade.opened_at is not None:
            days.add(ctx.clock.trading_day(trade.opened_at))
    return days


@register("min_trading_days", MinTradingDaysParams, phases=("objective",), slots=(Slot("days", "ge"),))
def min_trading_days(ctx: Ctx, p: MinTradingDaysParams, phase: Phase) -> Measure | Missing | None:
    """Met with at least ``days`` trading days: days (in the profile's day boundary) on which a position was
    *opened*; a trade spanning days counts only on its opening day."""
    days = _trading_days(ctx)
    return Measure(metrics=(Metric(Decimal(len(days)), Decimal(p.days), "trading days", "minimum", money=False),))


@register("best_day_ratio", BestDayParams, phases=("objective",), slots=(Slot("best", CMP), Slot("total", "gt")))
def best_day_ratio(ctx: Ctx, p: BestDayParams, phase: Phase) -> Measure | Missing | None:
    """Best day's profit against ``max_share_pct``% of total profit (FTMO Best Day: ``breach_when: le`` =
    met at exactly 50%; Topstep consistency "below": ``lt``). Needs a positive total profit.

    Daily profits come from ``state.daily_pnl``, else from closed trades grouped by trading day.
    """
    by_day: dict[dt.date, Decimal] = {}
    if ctx.state.daily_pnl:
        for item in ctx.state.daily_pnl:
            by_day[item.day] = by_day.get(item.day, _ZERO) + item.pnl
    else:
        for trade in ctx.state.closed_trades:
            day = ctx.clock.trading_day(trade.closed_at)
            by_day[day] = by_day.get(day, _ZERO) + trade.net_pnl
    total = sum(by_day.values(), _ZERO)
    best = max(by_day.values(), default=_ZERO)
    share = f"{(best / total):.4f}" if total > 0 else "n/a"
    return Measure(
        metrics=(
            Metric(best, total * p.max_share_pct / _HUNDRED, "best day", f"{p.max_share_pct}% of total profit"),
            Metric(total, _ZERO, "total profit", "zero"),
        ),
        extra={"best_day_share": share},
    )
