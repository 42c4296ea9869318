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

__all__ = [
    "canonical_datetime",
    "canonical_json",
    "canonical_tree",
    "encode_lowered",
    "sha256_hex",
]

# Integers beyond this lose precision in JavaScript and in RFC 8785 number formatting; use Decimal instead.
_MAX_SAFE_INT = 2**53 - 1
_MAX_DECIMAL_CHARS = 400
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=False)


# A path is the root name (str) or a (parent, key) pair; it is only formatted when an error is raised,
# because building "input.state.positions[3].size" for every value would dominate the encoding time.
_Path = Any


def _format_path(path: _Path) -> str:
    parts: list[str] = []
    while isinstance(path, tuple):
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return str(path) + "".join(reversed(parts))


def _refuse(path: _Path, message: str) -> AuditFormatError:
    where = _format_path(path)
    return AuditFormatError(f"{where}: {message}", field=where)


def _decimal(value: Decimal, path: _Path) -> str:
    if not value.is_finite():
        raise _refuse(path, f"{value} is not a finite number")
    if value.is_zero():
        return "0"  # also folds -0 and 0E-8, which are the same amount
    # Pure digit manipulation: Decimal.normalize() would round to the context precision (28 digits).
    sign, digit_tuple, exponent = value.as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)  # noqa: S101 - finite Decimals have an int exponent; narrows for mypy
    if len(digits) + abs(exponent) > _MAX_DECIMAL_CHARS:
        # Plain notation of 1E+999999999 would be a gigabyte: refuse absurd magnitudes instead.
        raise _refuse(path, f"{value} has too many digits for plain notation")
    if exponent >= 0:
        whole, fraction = digits + "0" * exponent, ""
    else:
        digits = digits.rjust(-exponent + 1, "0")
        whole, fraction = digits[:exponent], digits[exponent:].rstrip("0")
    whole = whole.lstrip("0") or "0"
    return ("-" if sign else "") + whole + ("." + fraction if fraction else "")


def _datetime(value: datetime, path: _Path) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _refuse(path, f"datetime {value.isoformat()} has no timezone")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}Z"


def canonical_datetime(value: datetime, path: str = "value") -> str:
    """Return the canonical UTC text of an aware datetime: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return _datetime(value, path)


def _utf16_key(key: str) -> bytes:
    # RFC 8785 orders members by UTF-16 code units; big-endian UTF-16 bytes compare in exactly that order.
    return key.encode("utf-16-be", "surrogatepass")


def _text(value: str, path: _Path) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _refuse(path, f"string is not valid Unicode ({exc.reason})") from exc
    return value


def _lower(value: Any, path: _Path) -> Any:
    """Turn ``value`` into a tree of dict/list/str/int/bool/None, validating as we go."""
    # Exact-type fast paths first (the common case by far); subclasses and other types go the long way.
    kind = type(value)
    if kind is str:
        return _text(value, path)
    if kind is dict:
        return _lower_mapping(value, path)
    if kind is list or kind is tuple:
        return [_lower(item, (path, index)) for index, item in enumerate(value)]
    if kind is Decimal:
        return _decimal(value, path)
    if kind is int:
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            return value
        raise _refuse(path, f"integer {value} is beyond ±(2**53-1); pass a Decimal")
    if value is None or kind is bool:
        return value
    return _lower_other(value, path)


def _lower_other(value: Any, path: _Path) -> Any:
    if isinstance(value, enum.Enum):
        return _lower(value.value, path)
    if isinstance(value, str):
        return _text(str.__str__(value), path)
    if isinstance(value, int):  # bool cannot be subclassed, so this is an int subclass
        return _lower(int(value), path)
    if isinstance(value, Decimal):
        return _decimal(value, path)
    if isinstance(value, float):
        raise _refuse(path, f"float {value!r} is not allowed; use Decimal or a string")
    if isinstance(value, datetime):
        return _datetime(value, path)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _lower_mapping(value, path)
    if isinstance(value, list | tuple):
        return [_lower(item, (path, index)) for index, item in enumerate(value)]
    if isinstance(value, msgspec.Struct | uuid.UUID):
        lowered = msgspec.to_builtins(value, builtin_types=(Decimal, datetime, date), order="deterministic")
        return _lower(lowered, path)
    raise _refuse(path, f"{type(value).__name__} cannot be encoded as canonical JSON")


def _lower_mapping(value: Mapping[Any, Any], path: _Path) -> dict[str, Any]:
    keys = list(value)
    for key in keys:
        if not isinstance(key, str):
            raise _refuse(path, f"object key {key!r} is not a string")
    # ASCII keys (nearly always) sort the same by code point as by UTF-16 code unit.
    if all(key.isascii() for key in keys):
        ordered = sorted(keys)
    else:
        ordered = sorted((_text(key, path) for key in keys), key=_utf16_key)
    return {str.__str__(key): _lower(value[key], (path, key)) for key in ordered}


def encode_lowered(tree: Any) -> bytes:
    """Encode a tree that is already canonical (from :func:`canonical_tree`) without walking it again."""
    return _ENCODER.encode(tree).encode("utf-8")


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
