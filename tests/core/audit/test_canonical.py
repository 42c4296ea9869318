"""Canonical JSON: exact bytes per the spec in docs/audit.md, and every refusal names its path."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalos_core.audit import AuditFormatError, canonical_json, canonical_tree, sha256_hex


class Side(enum.StrEnum):
    BUY = "buy"


class Level(enum.IntEnum):
    HIGH = 3


class Order(msgspec.Struct, rename="camel"):
    order_size: Decimal
    placed_at: datetime
    tags: frozenset[str]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, False, None]}, '{"a":[true,false,null],"b":1}'),
        (Decimal("100.00"), '"100"'),
        (Decimal("-0.50"), '"-0.5"'),
        (Decimal("1E+3"), '"1000"'),
        (Decimal("-0"), '"0"'),
        (Decimal("0E-8"), '"0"'),
        (Decimal("94999.99"), '"94999.99"'),
        (Decimal("0.000001"), '"0.000001"'),
        (Decimal("123456789012345678901234567890.123456789"), '"123456789012345678901234567890.123456789"'),
        (Decimal("-12.3400E-3"), '"-0.01234"'),
        (-0, "0"),
        (2**53 - 1, "9007199254740991"),
        ('quote" back\\ nl\n tab\t bell\x07 del\x7f é €', '"quote\\" back\\\\ nl\\n tab\\t bell\\u0007 del\x7f é €"'),
        (datetime(2026, 5, 12, 0, 0, tzinfo=ZoneInfo("Europe/Prague")), '"2026-05-11T22:00:00.000000Z"'),
        (datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5))), '"2026-01-01T17:00:00.000005Z"'),
        (date(2026, 5, 12), '"2026-05-12"'),
        (Side.BUY, '"buy"'),
        (Level.HIGH, "3"),
        ((1, 2), "[1,2]"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), '"12345678-1234-5678-1234-567812345678"'),
    ],
)
def test_exact_encoding(value: object, expected: str) -> None:
    assert canonical_json(value) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units_like_rfc8785() -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (surrogates D83D...) although its code point is smaller.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3, "B": 4}
    assert canonical_json(value) == '{"B":4,"a":3,"\U0001f600":2,"\ue000":1}'.encode()


def test_structs_are_lowered_with_renames_and_sorted_sets() -> None:
    order = Order(order_size=Decimal("1.50"), placed_at=datetime(2026, 5, 12, tzinfo=UTC), tags=frozenset({"b", "a"}))
    assert canonical_json({"order": order}) == (
        b'{"order":{"orderSize":"1.5","placedAt":"2026-05-12T00:00:00.000000Z","tags":["a","b"]}}'
    )


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"state": {"equity": 1.5}}, "input.state.equity"),
        ({"state": {"equity": Decimal("NaN")}}, "input.state.equity"),
        ({"when": datetime(2026, 5, 12)}, "input.when"),  # noqa: DTZ001 - the naive datetime is the point
        ({"items": [1, {1: "x"}]}, "input.items[1]"),
        ({"big": 2**53}, "input.big"),
        ({"set": {1, 2}}, "input.set"),
        ({"raw": b"bytes"}, "input.raw"),
        ({"huge": Decimal("1E+999999999")}, "input.huge"),
        ({"text": "lone \ud800 surrogate"}, "input.text"),
        ({"x": {"key \udc00": 1}}, "input.x"),
    ],
)
def test_refusals_name_the_path(value: object, path: str) -> None:
    with pytest.raises(AuditFormatError) as excinfo:
        canonical_json(value, "input")
    assert excinfo.value.field == path
    assert path in str(excinfo.value)


def test_sha256_hex_is_the_digest_of_the_canonical_bytes() -> None:
    value = {"z": Decimal("1.10"), "a": "x"}
    assert sha256_hex(value) == hashlib.sha256(b'{"a":"x","z":"1.1"}').hexdigest()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@given(_values)
def test_canonical_json_is_plain_json_of_the_tree_and_a_fixed_point(value: object) -> None:
    encoded = canonical_json(value)
    tree = canonical_tree(value)
    assert json.loads(encoded) == tree
    assert canonical_json(tree) == encoded  # storing the tree and re-encoding gives the same bytes
    assert canonical_json(json.loads(encoded)) == encoded


@given(st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=6), st.randoms())
def test_key_insertion_order_does_not_matter(value: dict[str, int], rnd: object) -> None:
    items = list(value.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert canonical_json(dict(items)) == canonical_json(value)


@given(st.decimals(allow_nan=False, allow_infinity=False), st.integers(min_value=0, max_value=6))
def test_equal_decimal_values_encode_equally_whatever_their_scale(value: Decimal, extra_zeros: int) -> None:
    with localcontext(prec=200):  # the encoding must not depend on the context precision
        rescaled = value.quantize(Decimal(1).scaleb(value.as_tuple().exponent - extra_zeros))  # type: ignore[operator]
    assert rescaled == value
    assert canonical_json(rescaled) == canonical_json(value)
    assert Decimal(json.loads(canonical_json(value))) == value


class Text(str):
    pass


class Count(int):
    pass


class Amount(Decimal):
    pass


class Items(list[object]):
    pass


def test_subclasses_and_other_mappings_encode_like_their_base() -> None:
    from collections import OrderedDict
    from types import MappingProxyType

    value = {
        "text": Text("x"),
        "count": Count(3),
        "amount": Amount("1.50"),
        "items": Items([1]),
        "mapping": MappingProxyType({"b": 1, "a": 2}),
        "ordered": OrderedDict([("z", 1), ("y", 2)]),
        Text("key"): True,
    }
    assert canonical_json(value) == (
        b'{"amount":"1.5","count":3,"items":[1],"key":true,"mapping":{"a":2,"b":1},"ordered":{"y":2,"z":1},"text":"x"}'
    )
    with pytest.raises(AuditFormatError, match=r"input\.big"):
        canonical_json({"big": Count(2**60)}, "input")
