"""Order and position rule kinds: leverage caps, size limits and scaling plans, stop-loss and risk at SL,
hedging/FIFO (NFA 2-43(b)), allowed instruments and the FINRA 2026 intraday margin standard."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

import msgspec

from signalos_core.compliance._instruments import Instrument
from signalos_core.compliance._kinds_base import CMP, Ctx, Measure, Metric, Missing, Params, Phase, Slot, register
from signalos_core.compliance._models import Order, Position

__all__ = ["LeverageCapParams", "MaxPositionSizeParams", "ScalingPlanParams"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


class _Params(Params, frozen=True, kw_only=True):
    """Base for kind params: strict and immutable."""


class LeverageCapParams(_Params, frozen=True, kw_only=True):
    """Params of ``leverage_cap``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"max_leverage": (_ZERO, None)}

    regime: Literal["esma", "nfa"]
    classes: Annotated[list[str], msgspec.Meta(min_length=1)]
    max_leverage: Decimal


class MaxPositionSizeParams(_Params, frozen=True, kw_only=True):
    """Params of ``max_position_size``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {
        "max": (_ZERO, None),
        "micro_weight": (_ZERO, None),
    }

    max: Decimal
    unit: Literal["lots", "contracts", "shares"] = "lots"
    micro_weight: Decimal = _ONE
    symbols: list[str] = msgspec.field(default_factory=list)


class Tier(_Params, frozen=True, kw_only=True):
    """A scaling-plan tier: ``max`` contracts once end-of-day profit is above ``above`` (null = base tier)."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"max": (_ZERO, None)}

    max: Decimal
    above: Decimal | None = None


class ScalingPlanParams(_Params, frozen=True, kw_only=True):
    """Params of ``scaling_plan``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"micro_weight": (_ZERO, None)}

    tiers: Annotated[list[Tier], msgspec.Meta(min_length=1)]
    tier_when: Literal["gt", "ge"] = "gt"
    micro_weight: Decimal = _ONE


class StopLossRequiredParams(_Params, frozen=True, kw_only=True):
    """Params of ``stop_loss_required``."""

    grace_seconds: Annotated[int, msgspec.Meta(ge=0)] = 0
    at_submission: bool = True


class MaxRiskParams(_Params, frozen=True, kw_only=True):
    """Params of ``max_risk_per_position``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"pct": (_ZERO, _HUNDRED)}

    pct: Decimal
    of: Literal["balance", "initial", "equity"] = "balance"


class NoHedgingParams(_Params, frozen=True, kw_only=True):
    """Params of ``no_hedging``."""

    mode: Literal["deny", "offset"] = "deny"


class FifoParams(_Params, frozen=True, kw_only=True):
    """Params of ``fifo_close``."""

    same_size_exception: bool = True


class AllowedInstrumentsParams(_Params, frozen=True, kw_only=True):
    """Params of ``allowed_instruments``."""

    symbols: list[str] = msgspec.field(default_factory=list)
    asset_classes: list[Literal["fx", "metal", "index", "commodity", "equity", "crypto"]] = msgspec.field(
        default_factory=list
    )


class IntradayMarginParams(_Params, frozen=True, kw_only=True):
    """``intraday_margin`` has no params."""


def _weight(ctx: Ctx, symbol: str, field: str, micro_weight: Decimal) -> Decimal:
    return micro_weight if ctx.instrument(symbol, field).micro else _ONE


def _notional(ctx: Ctx, order: Order, inst: Instrument) -> Decimal | Missing:
    """The order's notional in the account currency (the currency its ``margin`` is given in).

    Size × contract size × price is in the quote currency: used as is when the quote is the account currency;
    when the base is (USDJPY on a USD account) the notional is simply size × contract size; otherwise the
    order's ``quote_to_account`` rate converts it.
    """
    account = ctx.state.currency
    if inst.base == account and inst.quote != account:
        return order.size * inst.value_per_point
    if order.price is None:
        return Missing("order.price")
    notional = order.size * inst.value_per_point * order.price
    if inst.quote == account:
        return notional
    if order.quote_to_account is None:
        return Missing("order.quote_to_account")
    return notional * order.quote_to_account


@register("leverage_cap", LeverageCapParams, phases=("pre_trade",), slots=(Slot("leverage", CMP),))
def leverage_cap(ctx: Ctx, p: LeverageCapParams, phase: Phase) -> Measure | Missing | None:
    """Leverage cap at the opening of a position, for instruments of ``classes`` under ``regime``.

    Classes: ESMA/FCA/ASIC ``major_fx`` (pairs of USD EUR JPY GBP CAD CHF), ``non_major_fx``, ``gold``,
    ``major_index``, ``non_major_index``, ``commodity``, ``equity``, ``crypto``; NFA ``nfa_major`` (also AUD,
    NZD, SEK, NOK, DKK) and ``nfa_other``. Leverage is the order's ``requested_leverage``, else
    notional / ``margin`` with the notional converted to the account currency (per position, so no account
    equity is involved). Usually ``breach_when: gt``.
    """
    order = ctx.order
    if order is None or order.intent != "open":
        return None
    inst = ctx.instrument(order.symbol, "order.symbol")
    cls = ctx.catalog.classify(inst, p.regime)
    if cls not in p.classes:
        return None
    leverage = order.requested_leverage
    if leverage is None:
        if order.margin is None or order.margin == 0:
            return Missing("order.requested_leverage")
        notional = _notional(ctx, order, inst)
        if isinstance(notional, Missing):
            return notional
        leverage = notional / order.margin
    return Measure(
        metrics=(Metric(leverage, p.max_leverage, "leverage", f"{p.regime} {cls} cap", money=False),),
        extra={
            "leverage_cap": str(p.max_leverage),
            "initial_margin_pct": f"{(_HUNDRED / p.max_leverage):.2f}",
            "class": cls or "",
        },
    )


def _open_size(ctx: Ctx, order: Order, symbols: list[str], micro_weight: Decimal) -> Decimal:
    total = _ZERO
    for i, pos in enumerate(ctx.state.positions):
        if symbols and not any(ctx.same_instrument(pos.symbol, s) for s in symbols):
            continue
        total += pos.size * _weight(ctx, pos.symbol, f"state.positions[{i}].symbol", micro_weight)
    return total + order.size * _weight(ctx, order.symbol, "order.symbol", micro_weight)


@register("max_position_size", MaxPositionSizeParams, phases=("pre_trade",), slots=(Slot("size", CMP),))
def max_position_size(ctx: Ctx, p: MaxPositionSizeParams, phase: Phase) -> Measure | Missing | None:
    """Total open size (positions plus the new order) against ``max``; micros count ``micro_weight`` each.

    Topstep's "5 contracts or 50 micros" is ``max: 5, micro_weight: 0.1``. Optional ``symbols`` restricts the
    count to those symbols. Closing orders are not limited.
    """
    order = ctx.order
    if order is None or order.intent != "open":
        return None
    if p.symbols and not any(ctx.same_instrument(order.symbol, s) for s in p.symbols):
        return None
    size = _open_size(ctx, order, p.symbols, p.micro_weight)
    return Measure(metrics=(Metric(size, p.max, f"open {p.unit}", "max", money=False),))


@register("scaling_plan", ScalingPlanParams, phases=("pre_trade",), slots=(Slot("size", CMP),))
def scaling_plan(ctx: Ctx, p: ScalingPlanParams, phase: Phase) -> Measure | Missing | None:
    """Maximum open contracts by end-of-day profit tier (profit = balance at the day boundary − initial).

    The tier is fixed for the whole day: intraday profit never raises it. A tier applies once profit is above
    (``tier_when: gt``) or at least (``ge``) its ``above`` amount.
    """
    order = ctx.order
    if order is None or order.intent != "open":
        return None
    if ctx.initial is None:
        return Missing("state.initial_balance")
    eod_balance, _ = ctx.day_base()
    if eod_balance is None:  # pragma: no cover - day_base always reconstructs the balance
        return Missing("state.day_start")
    profit = eod_balance - ctx.initial
    allowed = p.tiers[0].max
    for tier in p.tiers:
        if tier.above is None or (profit > tier.above if p.tier_when == "gt" else profit >= tier.above):
            allowed = tier.max
    size = _open_size(ctx, order, [], p.micro_weight)
    return Measure(
        metrics=(Metric(size, allowed, "open contracts", "scaling-plan max", money=False),),
        base=profit,
        base_label="end-of-day profit",
        base_at=ctx.day_start_at,
    )


@register("stop_loss_required", StopLossRequiredParams, phases=("pre_trade", "monitor"), slots=(Slot("missing", "gt"),))
def stop_loss_required(ctx: Ctx, p: StopLossRequiredParams, phase: Phase) -> Measure | Missing | None:
    """Every order and position must carry a stop-loss.

    Pre-trade, ``at_submission: true`` refuses an opening order without one (a copier cannot promise to add it
    later). Monitoring counts positions and pending orders still without a stop-loss ``grace_seconds`` after
    opening or placing.
    """
    if phase == "pre_trade":
        order = ctx.order
        if order is None or order.intent != "open" or not p.at_submission:
            return None
        missing = _ONE if order.stop_loss is None else _ZERO
        return Measure(metrics=(Metric(missing, _ZERO, "orders without stop-loss", "allowed", money=False),))
    # "A Stop-loss is required in all positions and orders": resting pending orders count like positions.
    count = 0
    for stop, since in (
        *((pos.stop_loss, pos.opened_at) for pos in ctx.state.positions),
        *((pend.stop_loss, pend.placed_at) for pend in ctx.state.pending_orders),
    ):
        if stop is None and (since is None or (ctx.at - since).total_seconds() > p.grace_seconds):
            count += 1
    return Measure(
        metrics=(Metric(Decimal(count), _ZERO, "positions and orders without stop-loss", "allowed", money=False),)
    )


def _risk(
    ctx: Ctx, symbol: str, size: Decimal, *, entry: Decimal | None, sl: Decimal | None, rate: Decimal | None, where: str
) -> Decimal | Missing:
    if entry is None:
        return Missing(f"{where}.price")
    if sl is None:
        return Missing(f"{where}.stop_loss")
    inst = ctx.instrument(symbol, f"{where}.symbol")
    if inst.quote == ctx.state.currency:
        rate = _ONE
    elif rate is None:
        if inst.base == ctx.state.currency and entry:
            rate = _ONE / entry
        else:
            return Missing(f"{where}.quote_to_account")
    return abs(entry - sl) * size * inst.value_per_point * rate


@register("max_risk_per_position", MaxRiskParams, phases=("pre_trade", "monitor"), slots=(Slot("risk", CMP),))
def max_risk_per_position(ctx: Ctx, p: MaxRiskParams, phase: Phase) -> Measure | Missing | None:
    """Money at risk between entry and stop-loss, per position, against ``pct``% of balance (or initial/equity).

    Risk = |entry − SL| × size × contract size (or point value) × quote→account rate. An order or position
    without a stop-loss has unbounded risk and fails with ``missing_input``.
    """
    base = {"balance": ctx.state.balance, "initial": ctx.initial, "equity": ctx.equity}[p.of]
    if base is None:
        return Missing(f"state.{p.of}")
    if phase == "pre_trade":
        order = ctx.order
        if order is None or order.intent != "open":
            return None
        risk = _risk(
            ctx,
            order.symbol,
            order.size,
            entry=order.price,
            sl=order.stop_loss,
            rate=order.quote_to_account,
            where="order",
        )
    else:
        risk = _ZERO
        for i, pos in enumerate(ctx.state.positions):
            one = _risk(
                ctx, pos.symbol, pos.size, entry=pos.entry, sl=pos.stop_loss, rate=None, where=f"state.positions[{i}]"
            )
            if isinstance(one, Missing):
                return one
            risk = max(risk, one)
    if isinstance(risk, Missing):
        return risk
    limit = base * p.pct / _HUNDRED
    return Measure(
        metrics=(Metric(risk, limit, "risk at stop-loss", f"{p.pct}% of {p.of}"),), base=base, base_label=p.of
    )


def _opposite(ctx: Ctx, symbol: str, side: str) -> list[Position]:
    return [pos for pos in ctx.state.positions if pos.side != side and ctx.same_instrument(pos.symbol, symbol)]


@register("no_hedging", NoHedgingParams, phases=("pre_trade", "monitor"), slots=(Slot("offsetting", "gt"),))
def no_hedging(ctx: Ctx, p: NoHedgingParams, phase: Phase) -> Measure | Missing | None:
    """No offsetting (hedged) positions in one symbol.

    Pre-trade with ``mode: deny`` an opening order against an open opposite position is refused; with
    ``mode: offset`` (NFA 2-43(b)) it is allowed because the dealer executes it as a FIFO close of the oldest
    ticket. Monitoring flags an account that *carries* both sides.
    """
    if phase == "pre_trade":
        order = ctx.order
        if order is None or order.intent != "open":
            return None
        count = len(_opposite(ctx, order.symbol, order.side))
        if p.mode == "offset":
            note = "executed as a FIFO offset of the oldest opposite ticket" if count else ""
            return Measure(metrics=(Metric(_ZERO, _ZERO, "offsetting positions", "allowed", money=False),), note=note)
        return Measure(metrics=(Metric(Decimal(count), _ZERO, "offsetting positions", "allowed", money=False),))
    sides: dict[str, set[str]] = {}
    for pos in ctx.state.positions:
        sides.setdefault(ctx.instrument_key(pos.symbol), set()).add(pos.side)
    hedged = sum(1 for s in sides.values() if len(s) > 1)
    return Measure(metrics=(Metric(Decimal(hedged), _ZERO, "hedged symbols", "allowed", money=False),))


@register(
    "fifo_close", FifoParams, phases=("pre_trade",), slots=(Slot("out_of_order", "gt"),), applies_to_reducing=True
)
def fifo_close(ctx: Ctx, p: FifoParams, phase: Phase) -> Measure | Missing | None:
    """Closing must follow first-in, first-out (NFA 2-43(b)).

    Closing a named ticket (``position_id``) that is not the oldest open one in that symbol and direction is
    refused, except (``same_size_exception``) at the customer's request (``same_size_request``) for a close of
    the same size, which must then hit the oldest ticket *of that size*.
    """
    order = ctx.order
    if order is None or order.intent == "open" or order.position_id is None:
        return None
    target = next((pos for pos in ctx.state.positions if pos.id == order.position_id), None)
    if target is None:
        return Missing("order.position_id")
    same_way = [
        pos for pos in ctx.state.positions if pos.side == target.side and ctx.same_instrument(pos.symbol, target.symbol)
    ]
    if any(pos.opened_at is None for pos in same_way):
        return Missing("state.positions.opened_at")
    same_way.sort(key=lambda pos: (pos.opened_at, pos.id))
    bad = _ZERO
    if same_way[0].id != target.id:
        bad = _ONE
        if p.same_size_exception and order.same_size_request and order.size == target.size:
            oldest_of_size = next(pos for pos in same_way if pos.size == target.size)
            if oldest_of_size.id == target.id:
                bad = _ZERO
    return Measure(
        metrics=(Metric(bad, _ZERO, "out-of-FIFO closes", "allowed", money=False),),
        note=f"oldest ticket is {same_way[0].id}",
    )


@register("allowed_instruments", AllowedInstrumentsParams, phases=("pre_trade",), slots=(Slot("denied", "gt"),))
def allowed_instruments(ctx: Ctx, p: AllowedInstrumentsParams, phase: Phase) -> Measure | Missing | None:
    """Only the listed ``symbols`` and/or ``asset_classes`` may be opened (an empty list allows any)."""
    order = ctx.order
    if order is None or order.intent != "open":
        return None
    inst = ctx.instrument(order.symbol, "order.symbol")
    ok = (not p.symbols or order.symbol in p.symbols or inst.symbol in p.symbols) and (
        not p.asset_classes or inst.asset_class in p.asset_classes
    )
    return Measure(metrics=(Metric(_ZERO if ok else _ONE, _ZERO, "instrument not allowed", "allowed", money=False),))


@register("intraday_margin", IntradayMarginParams, phases=("pre_trade",), slots=(Slot("excess", CMP),))
def intraday_margin(ctx: Ctx, p: IntradayMarginParams, phase: Phase) -> Measure | Missing | None:
    """FINRA 4210 (2026): refuse an order that creates or increases an intraday margin deficit.

    Requirement after the order = ``state.maintenance_margin`` + ``order.margin_requirement``; a deficit is
    equity below it (``breach_when: lt``).
    """
    order = ctx.order
    if order is None or order.intent != "open":
        return None
    if ctx.state.maintenance_margin is None:
        return Missing("state.maintenance_margin")
    if order.margin_requirement is None:
        return Missing("order.margin_requirement")
    equity = ctx.equity
    if equity is None:
        return Missing("state.equity")
    required = ctx.state.maintenance_margin + order.margin_requirement
    return Measure(metrics=(Metric(equity, required, "equity", "intraday margin requirement"),))
