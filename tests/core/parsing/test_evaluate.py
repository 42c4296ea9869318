"""The evaluation library: per-kind exact match, field precision/recall, confusion, worst misses."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from signalos_core.parsing import ParseError, context_for, evaluate, load_corpus

RECORDS = [
    {
        "id": "a",
        "kind": "open",
        "text": "GOLD BUY 2330 SL 2320 TP 2340",
        "symbol": "XAUUSD",
        "side": "buy",
        "order_type": "market",
        "order_type_explicit": False,
        "entry": 2330,
        "sl": 2320,
        "tp": [2340],
    },
    {
        "id": "b",
        "kind": "open",
        "text": "GOLD BUY 2330 SL 2320 TP 2340",
        "symbol": "XAUUSD",
        "side": "buy",
        "order_type": "market",
        "order_type_explicit": False,
        "entry": 2330,
        "sl": 2320,
        "tp": [2345],
        "flags": ["missing_sl"],
        "ambiguous": True,
    },
    {"id": "c", "kind": "noise", "text": "EURUSD BUY 1.0850 SL 1.0820 TP 1.0900", "symbol": None},
    {
        "id": "d",
        "kind": "modify",
        "text": "Move SL to 2325",
        "action": {"action": "move_sl", "to": 2325},
        "context_symbol": "XAUUSD",
        "reply_to": {"message_id": "1", "text": "GOLD BUY 2330 SL 2320 TP 2340"},
    },
]


def test_scores() -> None:
    ticks: list[int] = []
    report = evaluate(RECORDS, progress=ticks.append, worst=2)
    assert (report.total, report.exact) == (4, 2)
    assert report.open_exact_rate == 0.5
    assert report.followup_exact_rate == 1.0
    assert report.unsafe == ["c"]
    assert report.confusion["noise"]["open"] == 1
    assert [m.id for m in report.misses] == ["c", "b"]  # unsafe first
    assert report.misses[1].fields == ["tp"]
    assert (report.ambiguous_exact, report.ambiguous_total) == (0, 1)
    tp = next(f for f in report.fields if f.name == "tp")
    assert (tp.tp, tp.fp, tp.fn) == (1, 2, 1)
    flags = {f.name: f for f in report.flags}
    assert flags["missing_sl"].fn == 1
    assert flags["missing_sl"].recall == 0.0
    assert len(ticks) == 4
    assert [(r.kind, r.count, r.exact) for r in report.realism] == [("unspecified", 4, 2)]


def test_empty_corpus() -> None:
    report = evaluate([])
    assert report.total == 0
    assert report.exact_rate == 1.0
    assert report.kinds == []


def test_context_for_reads_reply_and_context() -> None:
    assert context_for({"text": "x"}) is None
    ctx = context_for({"text": "x", "context": {"default_symbol": "XAUUSD", "current_price": 2330.5}})
    assert ctx is not None
    assert ctx.default_symbol == "XAUUSD"
    assert str(ctx.current_price) == "2330.5"
    ctx = context_for({"text": "x", "reply_to": {"text": "y", "message_id": "9"}}, "US30")
    assert ctx is not None
    assert ctx.reply_to is not None
    assert ctx.reply_to.message_id == "9"
    assert ctx.default_symbol == "US30"
    ctx = context_for({"text": "x", "context": {"prices": {"eurusd": "1.09"}}})
    assert ctx is not None
    assert ctx.price_for("EURUSD") == Decimal("1.09")


def test_load_corpus(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n", encoding="utf-8")
    assert [r["id"] for r in load_corpus(path)] == ["a", "b", "c", "d"]
    path.write_text('{"text": "x", "kind": "open"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ParseError, match=":2: not JSON"):
        load_corpus(path)
    path.write_text('{"text": 3, "kind": "open"}\n', encoding="utf-8")
    with pytest.raises(ParseError, match="needs 'text'"):
        load_corpus(path)
