"""Account state, orders and events: the documented input model of the compliance engine.

Money and sizes are :class:`~decimal.Decimal` end to end; every datetime must carry a timezone. The Structs are
strict (unknown fields are errors) so JSON from a broker bridge cannot smuggle in a misspelt field. Semantic
checks (naive datetimes, NaN/inf, negative sizes) live in :mod:`._validate` and raise ``EvaluationError`` naming
the field, because a compliance check must never allow on bad input.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

import msgspec

__all__ = [
    "AccountState",
    "ClockEvent",
    "ClosedTrade",
    "DailyPnl",
    "DaySnapshot",
    "DayTrade",
    "EodBalance",
    "EquityUpdate",
    "Event",
    "Fill",
    "HighWaterMarks",
    "Lock",
    "NewsEvent",
    "Order",
    "PendingOrder",
    "Position",
]

Side = Literal["buy", "sell"]


class _Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base: immutable (so a decision can never mutate its input) and strict about unknown fields."""


class Position(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An open position (one ticket). ``size`` is in lots (FX/CFD), contracts (futures) or shares."""

    id: str
    symbol: str
    side: Side
    size: Decimal
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    opened_at: dt.datetime | None = None
    mark: Decimal | None = None
    floating_pnl: Decimal | None = None
    margin: Decimal | None = None


class PendingOrder(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A working (not yet filled) order on the account."""

    id: str
    symbol: str
    side: Side
    size: Decimal
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    placed_at: dt.datetime | None = None


class ClosedTrade(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A closed position with its net P/L (after commissions and swaps) in account currency."""

    id: str
    symbol: str
    side: Side
    size: Decimal
    net_pnl: Decimal
    closed_at: dt.datetime
    opened_at: dt.datetime | None = None
    entry: Decimal | None = None
    exit: Decimal | None = None


class DaySnapshot(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Balance and equity at the start of the current trading day (the firm's day boundary)."""

    at: dt.datetime
    balance: Decimal
    equity: Decimal | None = None


class EodBalance(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Balance at the end of a trading day (``day`` is the firm's trading date)."""

    day: dt.date
    balance: Decimal


class DailyPnl(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Closed P/L of one trading day (used by best-day and consistency objectives)."""

    day: dt.date
    pnl: Decimal


class HighWaterMarks(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Highest values seen so far; the engine also folds in the current balance/equity."""

    closed_balance: Decimal | None = None
    equity: Decimal | None = None


class Lock(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An active restriction: ``kind='lock'`` lifts at ``until``; ``kind='breach'`` never lifts."""

    rule_id: str
    kind: Literal["lock", "breach"]
    since: dt.datetime
    until: dt.datetime | None = None
    reason: str = ""


class DayTrade(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A completed day trade (open and close on the same business day)."""

    date: dt.date
    symbol: str


class NewsEvent(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A scheduled release; ``targeted_instruments`` are the symbols a news rule restricts around it."""

    event: str
    release_at: dt.datetime
    restricted: bool = True
    targeted_instruments: list[str] = msgspec.field(default_factory=list)


class AccountState(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the engine knows about an account at ``as_of``.

    ``equity`` defaults to ``balance`` plus the positions' floating P/L when omitted. Optional blocks (day
    snapshot, EOD balances, news calendar, margins...) are needed only by the rules that use them; a rule whose
    data is absent denies with reason ``missing_input`` rather than guessing.
    """

    balance: Decimal
    as_of: dt.datetime | None = None
    account_id: str = ""
    currency: str = "USD"
    initial_balance: Decimal | None = None
    equity: Decimal | None = None
    positions: list[Position] = msgspec.field(default_factory=list)
    pending_orders: list[PendingOrder] = msgspec.field(default_factory=list)
    closed_trades: list[ClosedTrade] = msgspec.field(default_factory=list)
    day_start: DaySnapshot | None = None
    eod_balances: list[EodBalance] = msgspec.field(default_factory=list)
    daily_pnl: list[DailyPnl] = msgspec.field(default_factory=list)
    high_water: HighWaterMarks = msgspec.field(default_factory=HighWaterMarks)
    locks: list[Lock] = msgspec.field(default_factory=list)
    trading_days: list[dt.date] = msgspec.field(default_factory=list)
    day_trades: list[DayTrade] = msgspec.field(default_factory=list)
    total_trades_in_window: int | None = None
    market_holidays: list[dt.date] = msgspec.field(default_factory=list)
    news_calendar: list[NewsEvent] = msgspec.field(default_factory=list)
    account_type: Literal["cash", "margin"] = "margin"
    equity_prior_close: Decimal | None = None
    total_initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    created_at: dt.datetime | None = None


class Order(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A proposed order for a pre-trade check.

    ``intent`` says whether it opens new risk or closes/reduces a position (``position_id`` names the ticket);
    reduce-only orders stay allowed while an account is locked. ``requested_leverage`` (or ``margin`` with
    ``price``) is what leverage caps measure; ``quote_to_account`` converts quote-currency P/L when the quote
    currency differs from the account currency.
    """

    symbol: str
    side: Side
    size: Decimal
    at: dt.datetime
    id: str = ""
    order_type: Literal["market", "limit", "stop"] = "market"
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    intent: Literal["open", "close", "reduce"] = "open"
    position_id: str | None = None
    requested_leverage: Decimal | None = None
    margin: Decimal | None = None
    margin_requirement: Decimal | None = None
    quote_to_account: Decimal | None = None
    same_size_request: bool = False


class EquityUpdate(
    _Model, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="equity_update", tag_field="type"
):
    """A new equity (and optionally balance) reading."""

    at: dt.datetime
    equity: Decimal
    balance: Decimal | None = None


class Fill(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="fill", tag_field="type"):
    """An execution: opens a position, or closes one (``position_id``) realising ``net_pnl``.

    ``trigger`` records what caused it (a stop-loss or take-profit fill matters for news windows).
    """

    at: dt.datetime
    symbol: str
    side: Side
    size: Decimal
    price: Decimal
    action: Literal["open", "close"] = "open"
    position_id: str | None = None
    net_pnl: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trigger: Literal["market", "pending", "stop_loss", "take_profit"] = "market"


class ClockEvent(_Model, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="clock", tag_field="type"):
    """A time event: day boundary, weekend close, market break, position-time check, objectives evaluation."""

    at: dt.datetime
    event: Literal[
        "day_boundary", "weekend_market_close", "market_break", "position_time_check", "objectives_evaluation"
    ]
    instruments_closing: list[str] = msgspec.field(default_factory=list)


Event = EquityUpdate | Fill | ClockEvent
