"""Loss rule kinds: daily loss against the firm's day base, static and trailing maximum loss, margin close-out."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from signalos_core.compliance._kinds_base import CMP, Ctx, Measure, Metric, Missing, Params, Phase, Slot, register

__all__ = ["DailyLossParams", "MarginCloseOutParams", "MaxLossParams", "TrailingMaxLossParams"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class _Params(Params, frozen=True, kw_only=True):
    """Base for kind params: strict and immutable."""


class _Limit(_Params, frozen=True, kw_only=True):
    """A limit given as ``amount`` (money) or ``pct`` (percent of the initial balance)."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {
        "amount": (_ZERO, None),
        "pct": (_ZERO, _HUNDRED),
    }

    amount: Decimal | None = None
    pct: Decimal | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.amount is None) == (self.pct is None):
            raise ValueError("give exactly one of `amount` (money) or `pct` (percent of the initial balance)")


class DailyLossParams(_Limit, frozen=True, kw_only=True):
    """Params of ``daily_loss``."""

    base: Literal[
        "balance_at_boundary",
        "equity_at_boundary",
        "max_balance_equity_at_boundary",
        "initial_balance",
        "initial_plus_realized",
    ] = "balance_at_boundary"
    pct_of: Literal["initial", "base", "stricter"] = "initial"
    measured_on: Literal["equity", "balance"] = "equity"


class MaxLossParams(_Limit, frozen=True, kw_only=True):
    """Params of ``max_loss`` (static floor = initial − limit)."""

    measured_on: Literal["equity", "balance"] = "equity"


class TrailingMaxLossParams(_Limit, frozen=True, kw_only=True):
    """Params of ``trailing_max_loss``."""

    trail_on: Literal["eod_balance", "closed_balance", "equity"]
    stop_at: Literal["initial", "none"] = "none"
    stop_offset: Decimal = Decimal(0)
    measured_on: Literal["equity", "balance"] = "equity"


class MarginCloseOutParams(_Params, frozen=True, kw_only=True):
    """Params of ``margin_close_out``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"pct": (_ZERO, _HUNDRED)}

    pct: Decimal = Decimal(50)


class NegativeBalanceParams(_Params, frozen=True, kw_only=True):
    """``negative_balance`` has no params."""


def _measured(ctx: Ctx, on: str) -> Decimal | None:
    return ctx.equity if on == "equity" else ctx.state.balance


def _limit(params: _Limit, ctx: Ctx) -> Decimal | Missing:
    if params.amount is not None:
        return params.amount
    if ctx.initial is None:
        return Missing("state.initial_balance")
    assert params.pct is not None  # noqa: S101 - guaranteed by _Limit.__post_init__
    return ctx.initial * params.pct / _HUNDRED


_FLOOR = (Slot("floor", CMP),)


@register("daily_loss", DailyLossParams, phases=("pre_trade", "monitor"), slots=_FLOOR, warnable=True)
def daily_loss(ctx: Ctx, p: DailyLossParams, phase: Phase) -> Measure | Missing | None:
    """Equity (or balance) against a floor of *day base − limit*, reset at the profile's day boundary.

    ``base``: ``balance_at_boundary`` (FTMO, E8, FundedNext: floating P/L at the boundary ignored),
    ``equity_at_boundary``, ``max_balance_equity_at_boundary`` (The5ers), ``initial_balance``, or
    ``initial_plus_realized`` (initial balance plus the P/L realised since the boundary: the allowance grows
    with the day's realised profit and every day starts again from the initial balance). The limit is
    ``amount`` or ``pct`` of the initial balance (``pct_of: base`` takes it of the day base; ``stricter`` the
    higher of both floors). Intraday realised profit raises the balance but not the floor, which is how
    FundedNext's "realised profit adds to the allowance" works out.
    """
    bal, eq = ctx.day_base()
    if p.base == "balance_at_boundary":
        base, label = bal, "balance at day start"
    elif p.base == "equity_at_boundary":
        base, label = eq, "equity at day start"
    elif p.base == "max_balance_equity_at_boundary":
        base = None if bal is None or eq is None else max(bal, eq)
        label = "max(balance, equity) at day start"
    elif p.base == "initial_plus_realized":
        initial = ctx.initial
        base = None if initial is None else initial + ctx.realized_today()
        label = "initial balance + P/L realised today"
    else:
        base, label = ctx.initial, "initial balance"
    if base is None:
        return Missing("state.initial_balance" if p.base.startswith("initial") else "state.day_start.equity")
    measured = _measured(ctx, p.measured_on)
    if measured is None:
        return Missing("state.equity")
    if p.amount is not None:
        limit = p.amount
    else:
        assert p.pct is not None  # noqa: S101 - guaranteed by _Limit.__post_init__
        of_base = base * p.pct / _HUNDRED
        if p.pct_of == "base":
            limit = of_base
        else:
            initial = ctx.initial
            if initial is None:
                return Missing("state.initial_balance")
            of_initial = initial * p.pct / _HUNDRED
            limit = of_initial if p.pct_of == "initial" else min(of_initial, of_base)
    floor = base - limit
    return Measure(
        metrics=(Metric(measured, floor, p.measured_on, "floor"),),
        base=base,
        base_label=label,
        base_at=ctx.day_start_at,
        usage=(base - measured, limit),
    )


@register("max_loss", MaxLossParams, phases=("pre_trade", "monitor"), slots=_FLOOR, warnable=True)
def max_loss(ctx: Ctx, p: MaxLossParams, phase: Phase) -> Measure | Missing | None:
    """Static maximum loss: equity must stay above *initial − limit* at all times (floating P/L counts)."""
    initial = ctx.initial
    if initial is None:
        return Missing("state.initial_balance")
    limit = p.amount if p.amount is not None else initial * (p.pct or _ZERO) / _HUNDRED
    measured = _measured(ctx, p.measured_on)
    if measured is None:
        return Missing("state.equity")
    floor = initial - limit
    return Measure(
        metrics=(Metric(measured, floor, p.measured_on, "floor"),),
        base=initial,
        base_label="initial balance",
        usage=(initial - measured, limit),
    )


@register("trailing_max_loss", TrailingMaxLossParams, phases=("pre_trade", "monitor"), slots=_FLOOR, warnable=True)
def trailing_max_loss(ctx: Ctx, p: TrailingMaxLossParams, phase: Phase) -> Measure | Missing | None:
    """Trailing maximum loss: floor = high-water mark − limit, optionally stopped at the initial balance.

    ``trail_on``: ``eod_balance`` (highest end-of-day balance, recomputed at the day boundary; intraday moves
    ignored), ``closed_balance`` (high of the closed balance, moves immediately), ``equity`` (intraday peak
    including open profit). ``stop_at: initial`` caps the floor at initial + ``stop_offset`` (Topstep, E8);
    ``none`` keeps trailing (FTMO 1-Step). The high-water mark never starts below the initial balance.
    """
    if ctx.initial is None:
        return Missing("state.initial_balance")
    limit = _limit(p, ctx)
    if isinstance(limit, Missing):  # pragma: no cover - initial checked above
        return limit
    measured = _measured(ctx, p.measured_on)
    if measured is None:
        return Missing("state.equity")
    hwm = ctx.initial
    state = ctx.state
    if p.trail_on == "eod_balance":
        today = ctx.clock.trading_day(ctx.at)
        for eod in state.eod_balances:
            if eod.day < today and eod.balance > hwm:
                hwm = eod.balance
        boundary_balance, _ = ctx.day_base()
        if boundary_balance is not None and boundary_balance > hwm:
            hwm = boundary_balance  # the balance at the boundary is yesterday's end-of-day balance
        label = "highest end-of-day balance"
    elif p.trail_on == "closed_balance":
        for value in (state.high_water.closed_balance, state.balance):
            if value is not None and value > hwm:
                hwm = value
        label = "closed-balance high-water mark"
    else:
        for value in (state.high_water.equity, ctx.equity):
            if value is not None and value > hwm:
                hwm = value
        label = "equity high-water mark"
    floor = hwm - limit
    note = ""
    if p.stop_at == "initial":
        cap = ctx.initial + p.stop_offset
        if floor >= cap:
            floor = cap
            note = "trailing stopped at the starting balance"
    return Measure(
        metrics=(Metric(measured, floor, p.measured_on, "floor"),),
        base=hwm,
        base_label=label,
        note=note,
        usage=(hwm - measured, limit),
    )


@register("margin_close_out", MarginCloseOutParams, phases=("pre_trade", "monitor"), slots=(Slot("level", CMP),))
def margin_close_out(ctx: Ctx, p: MarginCloseOutParams, phase: Phase) -> Measure | Missing | None:
    """Margin close-out per account: equity against ``pct``% of the total initial margin of open positions.

    Uses ``state.total_initial_margin`` or the sum of the positions' ``margin``. ESMA's "at 50%" is
    ``breach_when: le``; ASIC's "less than 50%" is ``lt``. No open positions → not applicable.
    """
    state = ctx.state
    if not state.positions and not state.total_initial_margin:
        return None
    margin = state.total_initial_margin
    if margin is None:
        total = Decimal(0)
        for pos in state.positions:
            if pos.margin is None:
                return Missing("state.total_initial_margin")
            total += pos.margin
        margin = total
    measured = ctx.equity
    if measured is None:
        return Missing("state.equity")
    threshold = margin * p.pct / _HUNDRED
    return Measure(
        metrics=(Metric(measured, threshold, "equity", f"{p.pct}% of initial margin"),),
        base=margin,
        base_label="total initial margin",
        extra={"margin_level_pct": f"{(measured * _HUNDRED / margin):.2f}" if margin else "n/a"},
    )


@register("negative_balance", NegativeBalanceParams, phases=("monitor",), slots=(Slot("equity", "lt"),))
def negative_balance(ctx: Ctx, p: NegativeBalanceParams, phase: Phase) -> Measure | Missing | None:
    """Negative balance protection: equity below zero closes the account's positions (losses capped at funds)."""
    measured = ctx.equity
    if measured is None:
        return Missing("state.equity")
    return Measure(metrics=(Metric(measured, Decimal(0), "equity", "zero"),))
