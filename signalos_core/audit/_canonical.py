"""Canonical JSON: one exact byte string per value, so a hash can be recomputed anywhere.

The encoding is the JSON Canonicalization Scheme (RFC 8785) restricted to values that cannot lose
precision: JSON numbers are integers within ±(2**53 - 1) only, money travels as a string. Precisely:

* objects: keys must be strings; members sorted by the UTF-16 code units of their keys (RFC 8785 §3.2.3;
  for keys in the Basic Multilingual Plane that is plain code-point order); no duplicate keys;
* no whitespace anywhere; ``,`` between members and elements, ``:`` between key and value;
* strings: UTF-8, escaping only ``"`` ``\\`` and the controls below U+0020 (``\\b \\f \\n \\r \\t`` in short
  form, the others as ``\\u00xx`` with lower-case hex); everything else literal, never ``\\u`` for non-ASCII;
* ``true``/``false``/``null``; integers in decimal without leading zeros, ``-0`` is ``0``;
* :class:`~decimal.Decimal` becomes a JSON *string* in plain positional notation with trailing fractional zeros
  and the exponent removed: ``Decimal("100.00")`` → ``"100"``, ``Decimal("-0.50")`` → ``"-0.5"``,
  ``Decimal("1E+3")`` → ``"1000"``, ``Decimal("-0")`` → ``"0"``; NaN, infinities and numbers needing more than
  400 digits are refused. Equal values therefore encode equally, whatever scale a database column gave them;
* timezone-aware :class:`~datetime.datetime` becomes the UTC instant as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always
  six fractional digits); naive datetimes are refused; :class:`~datetime.date` becomes ``YYYY-MM-DD``;
* msgspec Structs, enums, UUIDs and tuples are first lowered with ``msgspec.to_builtins`` (Structs honour their
  field renames; sets inside Structs are sorted), then encoded by the rules above;
* ``float`` is refused (binary floats are not exact money), as are sets, bytes and any other type.

Errors name the path of the offending value (``input.state.equity``) so a caller can fix it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from signalos_core._errors import AuditFormatError

__all__ = ["canonical_datetime", "canonical_decimal", "canonical_json", "canonical_tree", "sha256_hex"]

# Integers beyond this lose precision in JavaScript and in RFC 8785 number formatting; use Decimal instead.
_MAX_SAFE_INT = 2**53 - 1
_MAX_DECIMAL_CHARS = 400
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=False)


def canonical_decimal(value: Decimal, path: str = "value") -> str:
    """Return the canonical string of a finite Decimal (positional notation, no trailing fractional zeros)."""
    if not value.is_finite():
        raise AuditFormatError(f"{path}: {value} is not a finite number", field=path)
    if value.is_zero():
        return "0"  # also folds -0 and 0E-8, which are the same amount
    # Pure digit manipulation: Decimal.normalize() would round to the context precision (28 digits).
    sign, digit_tuple, exponent = value.as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)  # noqa: S101 - finite Decimals have an int exponent; narrows for mypy
    if len(digits) + abs(exponent) > _MAX_DECIMAL_CHARS:
        # Plain notation of 1E+999999999 would be a gigabyte: refuse absurd magnitudes instead.
        raise AuditFormatError(f"{path}: {value} has too many digits for plain notation", field=path)
    if exponent >= 0:
        whole, fraction = digits + "0" * exponent, ""
    else:
        digits = digits.rjust(-exponent + 1, "0")
        whole, fraction = digits[:exponent], digits[exponent:].rstrip("0")
    whole = whole.lstrip("0") or "0"
    return ("-" if sign else "") + whole + ("." + fraction if fraction else "")


def canonical_datetime(value: datetime, path: str = "value") -> str:
    """Return the canonical UTC text of an aware datetime: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise AuditFormatError(f"{path}: datetime {value.isoformat()} has no timezone", field=path)
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}Z"


def _utf16_key(key: str) -> bytes:
    # RFC 8785 orders members by UTF-16 code units; big-endian UTF-16 bytes compare in exactly that order.
    return key.encode("utf-16-be", "surrogatepass")


def _lower(value: Any, path: str) -> Any:
    """Turn ``value`` into a tree of dict/list/str/int/bool/None, validating as we go."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if isinstance(value, enum.Enum):
            return value.value if isinstance(value.value, str) else _lower(value.value, path)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AuditFormatError(f"{path}: string is not valid Unicode ({exc.reason})", field=path) from exc
        return value
    if isinstance(value, int):
        if isinstance(value, enum.Enum):
            return _lower(value.value, path)
        if abs(value) > _MAX_SAFE_INT:
            raise AuditFormatError(f"{path}: integer {value} is beyond ±(2**53-1); pass a Decimal", field=path)
        return int(value)
    if isinstance(value, Decimal):
        return canonical_decimal(value, path)
    if isinstance(value, float):
        raise AuditFormatError(f"{path}: float {value!r} is not allowed; use Decimal or a string", field=path)
    if isinstance(value, datetime):
        return canonical_datetime(value, path)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _lower_mapping(value, path)
    if isinstance(value, list | tuple):
        return [_lower(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, msgspec.Struct | enum.Enum | uuid.UUID):
        lowered = msgspec.to_builtins(value, builtin_types=(Decimal, datetime, date), order="deterministic")
        return _lower(lowered, path)
    raise AuditFormatError(f"{path}: {type(value).__name__} cannot be encoded as canonical JSON", field=path)


def _lower_mapping(value: Mapping[Any, Any], path: str) -> dict[str, Any]:
    for key in value:
        if not isinstance(key, str):
            raise AuditFormatError(f"{path}: object key {key!r} is not a string", field=path)
    ordered = sorted(value, key=_utf16_key)
    return {key: _lower(value[key], f"{path}.{key}") for key in ordered}


def canonical_tree(value: Any, path: str = "value") -> Any:
    """Return ``value`` lowered to plain JSON types exactly as :func:`canonical_json` would encode it.

    Objects come back with their keys already in canonical order; Decimals and datetimes as their canonical
    strings. Storing this tree (instead of the original objects) makes a later re-encoding byte-identical.
    """
    return _lower(value, path)


def canonical_json(value: Any, path: str = "value") -> bytes:
    """Encode ``value`` as canonical JSON bytes (see the module docstring for the exact rules)."""
    return _ENCODER.encode(_lower(value, path)).encode("utf-8")


def sha256_hex(value: Any, path: str = "value") -> str:
    """Return the lower-case hex SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value, path)).hexdigest()
