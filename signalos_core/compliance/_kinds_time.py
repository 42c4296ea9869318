"""Time rule kinds: news blackout windows, weekend and close-by times in a named zone, trading hours, and the
FINRA pattern-day-trader count over business days with a holiday calendar."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

import msgspec

from signalos_core.compliance._calendar import business_days_back, parse_hhmm, zone
from signalos_core.compliance._kinds_base import CMP, Ctx, Measure, Metric, Missing, Params, Phase, Slot, register
from signalos_core.compliance._models import ClockEvent, Fill

__all__ = ["CloseByTimeParams", "NewsBlackoutParams", "PatternDayTraderParams"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Params(Params, frozen=True, kw_only=True):
    """Base for kind params: strict and immutable."""


class NewsBlackoutParams(_Params, frozen=True, kw_only=True):
    """Params of ``news_blackout``."""

    minutes_before: Annotated[int, msgspec.Meta(ge=0)]
    minutes_after: Annotated[int, msgspec.Meta(ge=0)]
    targeted_only: bool = True


class WeekendCloseParams(_Params, frozen=True, kw_only=True):
    """Params of ``weekend_close``; with ``timezone`` + ``close_at`` the weekly closed period is also known
    without a clock event (local wall time, so it follows DST)."""

    include_market_breaks: bool = True
    timezone: str | None = None
    close_day: Weekday = "fri"
    close_at: HHMM | None = None
    reopen_day: Weekday = "sun"
    reopen_at: HHMM = "23:00"


class CloseByTimeParams(_Params, frozen=True, kw_only=True):
    """Params of ``close_by_time``."""

    timezone: str
    flat_by: HHMM
    reopen_at: HHMM


class HoursWindow(_Params, frozen=True, kw_only=True):
    """A weekly trading window in local time."""

    days: list[Weekday]
    start: HHMM
    end: HHMM


class TradingHoursParams(_Params, frozen=True, kw_only=True):
    """Params of ``trading_hours``."""

    timezone: str
    windows: Annotated[list[HoursWindow], msgspec.Meta(min_length=1)]


class PatternDayTraderParams(_Params, frozen=True, kw_only=True):
    """Params of ``pattern_day_trader`` and ``pdt_min_equity``."""

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {"min_share_pct": (None, _HUNDRED)}

    min_day_trades: Annotated[int, msgspec.Meta(ge=1)] = 4
    window_business_days: Annotated[int, msgspec.Meta(ge=1)] = 5
    min_share_pct: Decimal = Decimal(6)
    timezone: str = "America/New_York"
    holidays: list[dt.date] = msgspec.field(default_factory=list)
    account_types: list[Literal["cash", "margin"]] = msgspec.field(default_factory=lambda: ["margin"])
    min_equity: Decimal = Decimal(25000)


@register(
    "news_blackout",
    NewsBlackoutParams,
    phases=("pre_trade", "monitor"),
    slots=(Slot("distance", CMP),),
    applies_to_reducing=True,
)
def news_blackout(ctx: Ctx, p: NewsBlackoutParams, phase: Phase) -> Measure | Missing | None:
    """No opening or closing on targeted instruments from ``minutes_before`` to ``minutes_after`` a restricted
    release in ``state.news_calendar``; in monitoring, a fill (including SL/TP) inside the window fires.

    The metric is how many seconds the time lies *outside* the nearest window (≤ 0 = inside); ``breach_when:
    le`` makes the edges inclusive, ``lt`` exclusive. Other instruments are unrestricted.
    """
    if phase == "pre_trade":
        if ctx.order is None:  # pragma: no cover - pre_trade always has an order
            return None
        symbol, at = ctx.order.symbol, ctx.order.at
    else:
        if not isinstance(ctx.event, Fill):
            return None
        symbol, at = ctx.event.symbol, ctx.event.at
    best: Decimal | None = None
    name = ""
    for news in ctx.state.news_calendar:
        if not news.restricted or (
            p.targeted_only and not any(ctx.same_instrument(symbol, t) for t in news.targeted_instruments)
        ):
            continue
        start = news.release_at - dt.timedelta(minutes=p.minutes_before)
        end = news.release_at + dt.timedelta(minutes=p.minutes_after)
        outside = Decimal(int(max((start - at).total_seconds(), (at - end).total_seconds())))
        if best is None or outside < best:
            best, name = outside, news.event
    if best is None:
        return None
    return Measure(
        metrics=(Metric(best, _ZERO, "seconds outside the news window", "window edge", money=False),), note=name
    )


def _in_weekend(at: dt.datetime, p: WeekendCloseParams) -> bool:
    """Whether ``at`` lies in the weekly closed period [close_day close_at, reopen_day reopen_at) local time."""
    if p.timezone is None or p.close_at is None:
        return False
    local = at.astimezone(zone(p.timezone))
    minute = local.weekday() * 1440 + local.hour * 60 + local.minute
    close_t, reopen_t = parse_hhmm(p.close_at), parse_hhmm(p.reopen_at)
    start = _DAYS.index(p.close_day) * 1440 + close_t.hour * 60 + close_t.minute
    end = _DAYS.index(p.reopen_day) * 1440 + reopen_t.hour * 60 + reopen_t.minute
    return start <= minute < end if start < end else (minute >= start or minute < end)


@register("weekend_close", WeekendCloseParams, phases=("pre_trade", "monitor"), slots=(Slot("open", "gt"),))
def weekend_close(ctx: Ctx, p: WeekendCloseParams, phase: Phase) -> Measure | Missing | None:
    """Positions must be closed before the weekend market close (and breaks > 2 h if ``include_market_breaks``).

    Fires on a ``weekend_market_close`` (or ``market_break``) clock event while positions in the closing
    instruments (all, if the event lists none) are still open. With ``timezone`` and ``close_at`` (and
    ``close_day``, ``reopen_day``, ``reopen_at``) it also fires on any event inside the weekly closed period
    while positions are open, and refuses opening orders there.
    """
    if phase == "pre_trade":
        order = ctx.order
        if order is None or order.intent != "open" or not _in_weekend(order.at, p):
            return None
        return Measure(metrics=(Metric(_ONE, _ZERO, "orders opened over the weekend", "allowed", money=False),))
    event = ctx.event
    closing: set[str] = set()
    if isinstance(event, ClockEvent) and (
        event.event == "weekend_market_close" or (p.include_market_breaks and event.event == "market_break")
    ):
        closing = set(event.instruments_closing)
    elif not _in_weekend(ctx.at, p):
        return None
    count = sum(
        1 for pos in ctx.state.positions if not closing or any(ctx.same_instrument(pos.symbol, c) for c in closing)
    )
    return Measure(metrics=(Metric(Decimal(count), _ZERO, "open positions at the close", "allowed", money=False),))


def _in_flat_window(at: dt.datetime, p: CloseByTimeParams) -> tuple[bool, dt.datetime]:
    local = at.astimezone(zone(p.timezone))
    flat, reopen = parse_hhmm(p.flat_by), parse_hhmm(p.reopen_at)
    now = local.time().replace(tzinfo=None)
    inside = flat <= now < reopen if flat < reopen else (now >= flat or now < reopen)
    return inside, local


def _flat_by_instant(local: dt.datetime, p: CloseByTimeParams) -> dt.datetime:
    """The flat-by instant of the session containing ``local`` (the same day, or yesterday after midnight)."""
    flat = parse_hhmm(p.flat_by)
    day = local.date() if local.time().replace(tzinfo=None) >= flat else local.date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, flat, tzinfo=local.tzinfo).astimezone(dt.UTC).astimezone(zone(p.timezone))


@register("close_by_time", CloseByTimeParams, phases=("pre_trade", "monitor"), slots=(Slot("open", "gt"),))
def close_by_time(ctx: Ctx, p: CloseByTimeParams, phase: Phase) -> Measure | Missing | None:
    """Be flat by ``flat_by`` local time in ``timezone`` until ``reopen_at`` (Topstep: 15:10 to 17:00 CT).

    Local time is computed from the named zone, so the rule follows DST. Pre-trade, opening orders inside the
    flat window are refused; in monitoring, any open position inside the window fires.
    """
    inside, local = _in_flat_window(ctx.at, p)
    if not inside:
        return None
    if phase == "pre_trade":
        if ctx.order is None or ctx.order.intent != "open":
            return None
        count = _ONE
    else:
        count = Decimal(len(ctx.state.positions))
    return Measure(
        metrics=(Metric(count, _ZERO, "open positions", "allowed after flat-by time", money=False),),
        note=f"{local:%H:%M} {local.tzname()} is past the flat-by time {p.flat_by} {p.timezone}",
        extra={"local_time": local.isoformat(), "flat_by": _flat_by_instant(local, p).isoformat()},
    )


@register("trading_hours", TradingHoursParams, phases=("pre_trade",), slots=(Slot("outside", "gt"),))
def trading_hours(ctx: Ctx, p: TradingHoursParams, phase: Phase) -> Measure | Missing | None:
    """Opening orders only inside the weekly ``windows`` (local ``start`` inclusive, ``end`` exclusive)."""
    if ctx.order is None or ctx.order.intent != "open":
        return None
    local = ctx.order.at.astimezone(zone(p.timezone))
    day = _DAYS[local.weekday()]
    now = local.time().replace(tzinfo=None)
    ok = any(day in w.days and parse_hhmm(w.start) <= now < parse_hhmm(w.end) for w in p.windows)
    return Measure(metrics=(Metric(_ZERO if ok else _ONE, _ZERO, "outside trading hours", "allowed", money=False),))


def _day_trade_counts(ctx: Ctx, p: PatternDayTraderParams) -> tuple[Decimal, Decimal, list[dt.date]] | Missing | None:
    """(day trades incl. the proposed one, total trades incl. it, business-day window) or None if no day trade."""
    order = ctx.order
    if order is None or ctx.state.account_type not in p.account_types:
        return None
    tz = zone(p.timezone)
    today = order.at.astimezone(tz).date()
    opened_today = [
        pos
        for pos in ctx.state.positions
        if ctx.same_instrument(pos.symbol, order.symbol)
        and pos.side != order.side
        and pos.opened_at is not None
        and pos.opened_at.astimezone(tz).date() == today
    ]
    if not opened_today:
        return None
    holidays = {*p.holidays, *ctx.state.market_holidays}
    window = business_days_back(today, p.window_business_days, holidays)
    count = sum(1 for t in ctx.state.day_trades if window[0] <= t.date <= window[-1]) + 1
    if ctx.state.total_trades_in_window is None:
        return Missing("state.total_trades_in_window")
    total = ctx.state.total_trades_in_window + 1
    return Decimal(count), Decimal(total), window


@register(
    "pattern_day_trader",
    PatternDayTraderParams,
    phases=("pre_trade",),
    slots=(Slot("count", "ge"), Slot("share", "gt")),
    applies_to_reducing=True,
)
def pattern_day_trader(ctx: Ctx, p: PatternDayTraderParams, phase: Phase) -> Measure | Missing | None:
    """FINRA 4210(f)(8)(B) designation: the proposed closing trade would be the ``min_day_trades``-th day trade
    within ``window_business_days`` business days (weekends and ``holidays`` skipped) *and* day trades would be
    more than ``min_share_pct``% of all trades in the window (margin accounts only)."""
    counts = _day_trade_counts(ctx, p)
    if counts is None or isinstance(counts, Missing):
        return counts
    count, total, window = counts
    return Measure(
        metrics=(
            Metric(count, Decimal(p.min_day_trades), "day trades in window", "pattern threshold", money=False),
            Metric(
                count,
                total * p.min_share_pct / _HUNDRED,
                "day trades",
                f"{p.min_share_pct}% of {total} trades",
                money=False,
            ),
        ),
        extra={"window": f"{window[0]}..{window[-1]}", "business_days": ",".join(map(str, window))},
    )


@register(
    "pdt_min_equity",
    PatternDayTraderParams,
    phases=("pre_trade",),
    slots=(Slot("designated", "eq"), Slot("equity", CMP)),
    applies_to_reducing=True,
)
def pdt_min_equity(ctx: Ctx, p: PatternDayTraderParams, phase: Phase) -> Measure | Missing | None:
    """A pattern day trader must have ``min_equity`` (prior-close equity, else current) to day trade;
    ``breach_when: lt``. Applies when the proposed day trade makes or keeps the account a pattern day trader."""
    counts = _day_trade_counts(ctx, p)
    if counts is None or isinstance(counts, Missing):
        return counts
    count, total, _window = counts
    designated = count >= p.min_day_trades and count * _HUNDRED > total * p.min_share_pct
    equity = ctx.state.equity_prior_close if ctx.state.equity_prior_close is not None else ctx.equity
    if equity is None:
        return Missing("state.equity_prior_close")
    return Measure(
        metrics=(
            Metric(_ONE if designated else _ZERO, _ONE, "pattern day trader", "designated", money=False),
            Metric(equity, p.min_equity, "equity", "PDT minimum equity"),
        ),
    )
