"""The rule-kind framework: what a kind measures, and the context it measures from.

Design: a rule kind never decides. It *measures* numbers from (state, order/event) in Python and returns them as
:class:`Metric` values (measured value and threshold, in Decimal) for condition slots it declared when the
profile was compiled. The selected backend (compiled Python predicates or durable-rules) then evaluates each
slot's comparator, so both backends see exactly the same numbers and only the comparison differs. A rule fires
when every one of its slots holds. A kind that lacks the data it needs returns :class:`Missing`, which the
engine turns into a firing with reason ``missing_input`` (fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, NamedTuple

import msgspec

from signalos_core._errors import EvaluationError
from signalos_core.compliance._calendar import DayClock
from signalos_core.compliance._instruments import Instrument, InstrumentCatalog
from signalos_core.compliance._models import AccountState, Event, Order

__all__ = [
    "CMP",
    "KINDS",
    "Ctx",
    "KindSpec",
    "Measure",
    "Metric",
    "Missing",
    "Params",
    "Phase",
    "Slot",
    "money",
    "register",
]

Phase = Literal["pre_trade", "monitor", "objective"]
#: Slot operator meaning "use the rule's ``breach_when`` comparator".
CMP = "cmp"
_ZERO = Decimal(0)


_CENT = Decimal("0.01")


def money(value: Decimal | None) -> str:
    """``Decimal('94999.99')`` → ``'94,999.99'`` for explanations (display only; decisions use exact values).

    Rounded half-even to the cent with exact Decimal arithmetic; hand-built because ``format(Decimal, ',.2f')``
    is several times slower and this runs in every explanation.
    """
    if value is None:
        return "n/a"
    try:
        text = str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))
    except InvalidOperation:  # beyond the context precision: fall back to the general formatter
        return f"{value:,.2f}"
    sign = "-" if text[0] == "-" and text.strip("-0.") else ""
    whole, _, cents = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}.{cents}"


@dataclass(frozen=True, slots=True)
class Slot:
    """A condition slot declared at compile time: a name and an operator (``lt``/``le``/``gt``/``ge``/``eq`` or CMP)."""

    name: str
    op: str


class Metric(NamedTuple):
    """A measured value and the threshold it is compared with, plus words for the explanation.

    A NamedTuple because kinds build several per check and tuple construction is the cheapest there is.
    """

    value: Decimal
    threshold: Decimal
    label: str
    threshold_label: str
    #: Render as money (``94,999.99``) in messages; counts, seconds and ratios set this False.
    money: bool = True


@dataclass(slots=True)
class Measure:
    """What a kind measured: one :class:`Metric` (or ``None`` = not applicable) per declared slot."""

    metrics: tuple[Metric | None, ...]
    base: Decimal | None = None
    base_label: str = ""
    base_at: dt.datetime | None = None
    note: str = ""
    #: For warn thresholds: (amount of the limit used, the limit).
    usage: tuple[Decimal, Decimal] | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Missing:
    """The kind lacks an input; ``field`` names it (the rule then denies with ``missing_input``)."""

    field: str


MeasureFn = Callable[["Ctx", Any, Phase], "Measure | Missing | None"]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """A documented rule kind: its params Struct, the phases it runs in and its condition slots."""

    name: str
    params: type[msgspec.Struct]
    phases: frozenset[Phase]
    slots: tuple[Slot, ...]
    measure: MeasureFn
    doc: str
    needs_comparator: bool
    #: Whether a reduce-only / closing order is still subject to the rule in a pre-trade check.
    applies_to_reducing: bool = False
    warnable: bool = False


KINDS: dict[str, KindSpec] = {}


class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every kind's params: strict, immutable; Decimal fields finite and inside ``_ranges``.

    ``_ranges`` maps a field to (exclusive lower bound, inclusive upper bound); msgspec cannot constrain
    Decimal fields itself.
    """

    _ranges: ClassVar[dict[str, tuple[Decimal | None, Decimal | None]]] = {}

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                continue
            if not value.is_finite():
                raise ValueError(f"`{name}` must be a finite number")
            low, high = self._ranges.get(name, (None, None))
            if low is not None and value <= low:
                raise ValueError(f"`{name}` must be greater than {low}")
            if high is not None and value > high:
                raise ValueError(f"`{name}` must be at most {high}")


def register(
    name: str,
    params: type[msgspec.Struct],
    *,
    phases: tuple[Phase, ...],
    slots: tuple[Slot, ...],
    applies_to_reducing: bool = False,
    warnable: bool = False,
) -> Callable[[MeasureFn], MeasureFn]:
    """Register a kind's measure function (its docstring is the kind's documentation)."""

    def deco(fn: MeasureFn) -> MeasureFn:
        KINDS[name] = KindSpec(
            name=name,
            params=params,
            phases=frozenset(phases),
            slots=slots,
            measure=fn,
            doc=(fn.__doc__ or "").strip(),
            needs_comparator=any(s.op == CMP for s in slots),
            applies_to_reducing=applies_to_reducing,
            warnable=warnable,
        )
        return fn

    return deco


_UNSET: Any = object()


class Ctx:
    """Inputs of one evaluation with lazily computed, cached derived values (equity, day base, ...)."""

    __slots__ = ("_base", "_equity", "_start", "at", "catalog", "clock", "default_initial", "event", "order", "state")

    def __init__(
        self,
        state: AccountState,
        at: dt.datetime,
        *,
        clock: DayClock,
        catalog: InstrumentCatalog,
        default_initial: Decimal | None,
        order: Order | None = None,
        event: Event | None = None,
    ) -> None:
        self.state = state
        self.at = at
        self.clock = clock
        self.catalog = catalog
        self.default_initial = default_initial
        self.order = order
        self.event = event
        # Slots instead of a dict: this object is built on every pre-trade check.
        self._equity: Any = _UNSET
        self._start: Any = _UNSET
        self._base: Any = _UNSET

    # -- money ----------------------------------------------------------------------------------------------
    @property
    def initial(self) -> Decimal | None:
        """Initial (starting) balance: the state's, else the profile's ``account_size`` parameter."""
        initial = self.state.initial_balance
        return self.default_initial if initial is None else initial

    @property
    def equity(self) -> Decimal | None:
        """Equity: as reported, else balance plus every position's floating P/L (``None`` if one is unknown)."""
        eq = self._equity
        if eq is _UNSET:
            eq = self.state.equity
            if eq is None:
                total: Decimal | None = self.state.balance
                for pos in self.state.positions:
                    if pos.floating_pnl is None:
                        total = None
                        break
                    total = (total or _ZERO) + pos.floating_pnl
                eq = total
            self._equity = eq
        result: Decimal | None = eq
        return result

    # -- the trading day ------------------------------------------------------------------------------------
    @property
    def day_start_at(self) -> dt.datetime:
        """Start of the current trading day in the profile's zone."""
        start = self._start
        if start is _UNSET:
            start = self._start = self.clock.current_start(self.at)
        result: dt.datetime = start
        return result

    def day_base(self) -> tuple[Decimal | None, Decimal | None]:
        """(balance, equity) at the current day boundary.

        Uses the state's snapshot when it belongs to the current day; else the recorded end-of-day balance of
        the previous trading day; else reconstructs the boundary balance as the balance minus P/L closed since
        the boundary (``closed_trades`` must then cover the day). The boundary equity is known only from the
        snapshot, or when no position was open across the boundary.
        """
        if self._base is not _UNSET:
            cached: tuple[Decimal | None, Decimal | None] = self._base
            return cached
        start = self.day_start_at
        start_utc = self.clock.utc(start)
        snap = self.state.day_start
        result: tuple[Decimal | None, Decimal | None]
        if snap is not None and snap.at >= start_utc:
            result = (snap.balance, snap.equity)
        else:
            bal = self._previous_eod(start)
            if bal is None:
                bal = self.state.balance
                for trade in self.state.closed_trades:
                    if trade.closed_at > start_utc:
                        bal -= trade.net_pnl
            carried = any(p.opened_at is None or p.opened_at < start_utc for p in self.state.positions) or any(
                t.closed_at > start_utc and (t.opened_at is None or t.opened_at < start_utc)
                for t in self.state.closed_trades
            )
            result = (bal, None if carried else bal)
        self._base = result
        return result

    def _previous_eod(self, start: dt.datetime) -> Decimal | None:
        """The recorded end-of-day balance of the day that ended at ``start`` (it is the boundary balance)."""
        if not self.state.eod_balances:
            return None
        previous = self.clock.trading_day(start - dt.timedelta(microseconds=1))
        for eod in self.state.eod_balances:
            if eod.day == previous:
                return eod.balance
        return None

    def realized_today(self) -> Decimal:
        """Net P/L of trades closed since the current day boundary."""
        start = self.clock.utc(self.day_start_at)
        return sum((t.net_pnl for t in self.state.closed_trades if t.closed_at > start), _ZERO)

    # -- instruments / orders -------------------------------------------------------------------------------
    def instrument(self, symbol: str, field_name: str) -> Instrument:
        """Resolve a symbol (unknown → ``EvaluationError`` naming ``field_name``)."""
        return self.catalog.get(symbol, field=field_name)

    def instrument_key(self, symbol: str) -> str:
        """A comparison key naming the instrument behind ``symbol``, so that broker aliases match (``US30`` and
        ``US30.cash``, ``GOLD`` and ``XAUUSD``, ``EUR/USD`` and ``EURUSD``).

        A futures symbol keeps its contract month (``ESM6`` and ``ESU6`` are different contracts); a symbol
        the catalog does not know is compared as written (upper-cased), never an error: lists such as a news
        calendar's targeted instruments may name instruments this account never trades.
        """
        try:
            inst = self.catalog.get(symbol)
        except EvaluationError:
            return symbol.upper()
        return symbol.upper() if inst.futures else inst.symbol

    def same_instrument(self, a: str, b: str) -> bool:
        """Whether two symbols name the same instrument (see :meth:`instrument_key`)."""
        return a == b or self.instrument_key(a) == self.instrument_key(b)

    @property
    def order_is_reducing(self) -> bool:
        """Whether the proposed order only closes or reduces existing exposure."""
        return self.order is not None and self.order.intent != "open"
