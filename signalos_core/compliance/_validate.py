"""Input validation that must hold before any rule runs: a check never allows on bad input.

msgspec already enforces types and unknown fields; this adds what JSON types cannot say: every datetime is
timezone-aware, every Decimal is finite, sizes are not negative (and an order's size is positive).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec

from signalos_core._errors import EvaluationError

__all__ = ["validate"]

_NON_NEGATIVE = frozenset({"size", "requested_leverage", "margin", "margin_requirement", "total_initial_margin",
                           "maintenance_margin", "quote_to_account"})
_SCALARS = (str, bool, int)


def _check(value: Any, path: str, name: str) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise EvaluationError(f"{path} is {value}, not a finite number", field=path)
        if name in _NON_NEGATIVE and value < 0:
            raise EvaluationError(f"{path} must not be negative (got {value})", field=path)
    elif isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise EvaluationError(f"{path} is a naive datetime; give a timezone offset or Z", field=path)
    elif isinstance(value, msgspec.Struct):
        _walk(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, _SCALARS):
                _check(item, f"{path}[{i}]", name)
    elif isinstance(value, float):
        raise EvaluationError(f"{path} is a float; money and sizes must be decimals", field=path)


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
