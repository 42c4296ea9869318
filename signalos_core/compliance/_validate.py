"""Input validation that must hold before any rule runs: a check never allows on bad input.

msgspec already enforces types and unknown fields; this adds what JSON types cannot say: every datetime is
timezone-aware, every Decimal is finite, sizes are not negative (and an order's size is positive). The hot
fields (balances, positions, the order) are checked by explicit code because this runs on every pre-trade
check; the rarely filled blocks fall back to a generic walk over the Struct fields.
"""

from __future__ import annotations

import datetime as dt
import typing
from decimal import Decimal
from typing import Any

import msgspec

from signalos_core._errors import EvaluationError
from signalos_core.compliance._models import AccountState, Order, Position

__all__ = ["validate", "validate_order", "validate_state"]

_NON_NEGATIVE = frozenset(
    {
        "size",
        "requested_leverage",
        "margin",
        "margin_requirement",
        "total_initial_margin",
        "maintenance_margin",
        "quote_to_account",
    }
)
_SCALARS = (str, bool, int)
_GENERIC_BLOCKS = (
    "pending_orders",
    "closed_trades",
    "eod_balances",
    "daily_pnl",
    "locks",
    "news_calendar",
    "day_trades",
)


def _bad_decimal(value: Decimal, path: str) -> EvaluationError:
    return EvaluationError(f"{path} is {value}, not a finite number", field=path)


def _naive(path: str) -> EvaluationError:
    return EvaluationError(f"{path} is a naive datetime; give a timezone offset or Z", field=path)


def _negative(path: str, value: Decimal) -> EvaluationError:
    return EvaluationError(f"{path} must not be negative (got {value})", field=path)


def _check(value: Any, path: str, name: str) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _bad_decimal(value, path)
        if name in _NON_NEGATIVE and value < 0:
            raise _negative(path, value)
    elif isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            raise _naive(path)
    elif isinstance(value, msgspec.Struct):
        _walk(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, _SCALARS):
                _check(item, f"{path}[{i}]", name)


def _walk(obj: msgspec.Struct, prefix: str) -> None:
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        if value is None or isinstance(value, _SCALARS):
            continue
        _check(value, f"{prefix}.{name}", name)


def validate(obj: msgspec.Struct, root: str) -> None:
    """Raise :class:`EvaluationError` naming the first bad field of ``obj`` (``root`` prefixes the path)."""
    _walk(obj, root)
    size = getattr(obj, "size", None)
    if isinstance(size, Decimal) and size == 0 and root in ("order", "event"):
        raise EvaluationError(f"{root}.size must be positive", field=f"{root}.size")


_POSITION_NUMBERS = ("entry", "stop_loss", "take_profit", "mark", "floating_pnl", "margin")
_STATE_NUMBERS = ("equity", "initial_balance", "equity_prior_close", "total_initial_margin", "maintenance_margin")
_ORDER_NUMBERS = (
    "price",
    "stop_loss",
    "take_profit",
    "requested_leverage",
    "margin",
    "margin_requirement",
    "quote_to_account",
)


def _numbers(values: tuple[Decimal | None, ...], names: tuple[str, ...], prefix: str) -> None:
    """Finite (and, where required, non-negative) optional Decimals; paths are built only on failure.

    The loop tests finiteness only; the few fields that must not be negative are named in ``_NON_NEGATIVE``
    and re-checked on the slow path, which runs only when a negative value is present among them.
    """
    for value in values:
        if value is not None and not value.is_finite():
            break
    else:
        return
    for value, name in zip(values, names, strict=True):
        if value is not None:
            _check(value, f"{prefix}.{name}", name)


def _non_negative(values: tuple[Decimal | None, ...], names: tuple[str, ...], prefix: str) -> None:
    for value, name in zip(values, names, strict=True):
        if value is not None and value < 0:
            raise _negative(f"{prefix}.{name}", value)


def _position(pos: Position, i: int) -> None:
    size = pos.size
    if not size.is_finite() or size < 0:
        _check(size, f"state.positions[{i}].size", "size")
    _numbers(
        (pos.entry, pos.stop_loss, pos.take_profit, pos.mark, pos.floating_pnl, pos.margin),
        _POSITION_NUMBERS,
        f"state.positions[{i}]",
    )
    if pos.opened_at is not None and pos.opened_at.utcoffset() is None:
        raise _naive(f"state.positions[{i}].opened_at")
    if pos.margin is not None and pos.margin < 0:
        raise _negative(f"state.positions[{i}].margin", pos.margin)


def _type_error(obj: msgspec.Struct, prefix: str) -> EvaluationError:
    """Find the field whose Python value does not have its declared type (a Struct built by hand in Python
    skips msgspec's type checks): used only after the fast path tripped over such a value."""
    hints = _hints(type(obj))
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        path = f"{prefix}.{name}"
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            if isinstance(item, msgspec.Struct):
                try:
                    _type_error_raise(item, where)
                except EvaluationError as exc:
                    return exc
            elif Decimal in hints[name] and item is not None and not isinstance(item, Decimal):
                return EvaluationError(f"{where} must be a Decimal, not {type(item).__name__}", field=where)
            elif dt.datetime in hints[name] and item is not None and not isinstance(item, dt.datetime):
                return EvaluationError(f"{where} must be a datetime, not {type(item).__name__}", field=where)
    return EvaluationError(f"{prefix} holds a value of the wrong type", field=prefix)


def _type_error_raise(obj: msgspec.Struct, prefix: str) -> None:
    exc = _type_error(obj, prefix)
    if exc.field != prefix:
        raise exc


def _hints(cls: type) -> dict[str, frozenset[type]]:
    """Field name → the plain types its annotation mentions (cached per class)."""
    cached = _HINTS.get(cls)
    if cached is None:
        out: dict[str, frozenset[type]] = {}
        for name, hint in typing.get_type_hints(cls).items():
            args = typing.get_args(hint)
            flat = {a for a in args if isinstance(a, type)}
            for arg in args:
                flat.update(a for a in typing.get_args(arg) if isinstance(a, type))
            if isinstance(hint, type):
                flat.add(hint)
            out[name] = frozenset(flat)
        cached = _HINTS[cls] = out
    return cached


_HINTS: dict[type, dict[str, frozenset[type]]] = {}


def validate_state(state: AccountState) -> None:
    """Validate an :class:`AccountState`; a value of the wrong Python type is reported by field too."""
    try:
        _validate_state(state)
    except (AttributeError, TypeError):
        raise _type_error(state, "state") from None


def validate_order(order: Order) -> None:
    """Validate an :class:`Order`: aware time, finite numbers, positive size, declared types."""
    try:
        _validate_order(order)
    except (AttributeError, TypeError):
        raise _type_error(order, "order") from None


def _validate_state(state: AccountState) -> None:
    if not state.balance.is_finite():
        raise _bad_decimal(state.balance, "state.balance")
    _numbers(
        (
            state.equity,
            state.initial_balance,
            state.equity_prior_close,
            state.total_initial_margin,
            state.maintenance_margin,
        ),
        _STATE_NUMBERS,
        "state",
    )
    _non_negative(
        (state.total_initial_margin, state.maintenance_margin), ("total_initial_margin", "maintenance_margin"), "state"
    )
    if state.as_of is not None and state.as_of.utcoffset() is None:
        raise _naive("state.as_of")
    if state.created_at is not None and state.created_at.utcoffset() is None:
        raise _naive("state.created_at")
    for i, pos in enumerate(state.positions):
        _position(pos, i)
    snap = state.day_start
    if snap is not None:
        if snap.at.utcoffset() is None:
            raise _naive("state.day_start.at")
        if not snap.balance.is_finite():
            raise _bad_decimal(snap.balance, "state.day_start.balance")
        if snap.equity is not None and not snap.equity.is_finite():
            raise _bad_decimal(snap.equity, "state.day_start.equity")
    hw = state.high_water
    for name, value in (("closed_balance", hw.closed_balance), ("equity", hw.equity)):
        if value is not None and not value.is_finite():
            raise _bad_decimal(value, f"state.high_water.{name}")
    # Rarely filled blocks: explicit truth tests (no getattr loop) on the hot path, generic walk when present.
    if (
        state.pending_orders
        or state.closed_trades
        or state.eod_balances
        or state.daily_pnl
        or state.locks
        or state.news_calendar
        or state.day_trades
    ):
        for name in _GENERIC_BLOCKS:
            items = getattr(state, name)
            if items:
                _check(items, f"state.{name}", name)


def _validate_order(order: Order) -> None:
    if order.at.utcoffset() is None:
        raise _naive("order.at")
    size = order.size
    if not size.is_finite():
        raise _bad_decimal(size, "order.size")
    if size <= 0:
        raise EvaluationError(f"order.size must be positive (got {size})", field="order.size")
    _numbers(
        (
            order.price,
            order.stop_loss,
            order.take_profit,
            order.requested_leverage,
            order.margin,
            order.margin_requirement,
            order.quote_to_account,
        ),
        _ORDER_NUMBERS,
        "order",
    )
    _non_negative(
        (order.requested_leverage, order.margin, order.margin_requirement, order.quote_to_account),
        _ORDER_NUMBERS[3:],
        "order",
    )
