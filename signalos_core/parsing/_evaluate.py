"""Scoring the parser against a labelled corpus (``signals-dev.jsonl`` format).

Exact match = every *scored field* equal (numbers within 1e-9, zones sorted, TPs in written order, actions
as dicts). Flags are hazards whose names are partly a labeller's judgement, so they are scored separately
(per-flag precision/recall), not in the exact match. ``unsafe`` lists noise/info messages the parser turned
into an order (open/modify/close/cancel): the goal is none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from signalos_core._errors import ParseError
from signalos_core.parsing._model import ParseContext, ParseResult, ReplyTo
from signalos_core.parsing._parser import SignalParser

__all__ = ["SCORED_FIELDS", "EvalReport", "FieldScore", "KindScore", "Miss", "context_for", "evaluate", "load_corpus"]

SCORED_FIELDS = (
    "kind",
    "symbol",
    "side",
    "order_type",
    "order_type_explicit",
    "entry",
    "entries",
    "sl",
    "tp",
    "tp_open",
    "sl_pips",
    "tp_pips",
    "entry_shorthand",
    "sl_shorthand",
    "tp_shorthand",
    "price_unit",
    "quantity",
    "leverage",
    "action",
    "actions",
    "context_symbol",
)
KINDS = ("open", "modify", "close", "cancel", "info", "noise")
FOLLOW_UPS = ("modify", "close", "cancel", "info")
_ORDER_KINDS = frozenset({"open", "modify", "close", "cancel"})


class FieldScore(msgspec.Struct, frozen=True):
    """Precision/recall of one field (or flag) over the corpus."""

    name: str
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float


class KindScore(msgspec.Struct, frozen=True):
    """Exact-match rate of the messages labelled with one kind."""

    kind: str
    count: int
    exact: int
    rate: float


class Miss(msgspec.Struct, frozen=True):
    """One message not matched exactly; ``severity`` orders the worst first (unsafe > wrong kind > fields)."""

    id: str
    expected_kind: str
    got_kind: str
    fields: list[str]
    severity: int
    text: str
    expected: dict[str, Any]
    got: dict[str, Any]


class EvalReport(msgspec.Struct, frozen=True):
    """Everything ``signalos parse-eval`` prints."""

    total: int
    exact: int
    exact_rate: float
    open_exact_rate: float
    followup_exact_rate: float
    kinds: list[KindScore]
    fields: list[FieldScore]
    flags: list[FieldScore]
    confusion: dict[str, dict[str, int]]
    unsafe: list[str]
    misses: list[Miss]
    ambiguous_exact: int
    ambiguous_total: int
    realism: list[KindScore]  # exact match per record "realism" (channel / fixture / doc / issue), reported apart


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), 9)
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value  # pragma: no cover - labels only hold JSON types


def _empty(value: Any) -> bool:
    return value is None or value is False or value in ([], {})


def _field(label: Mapping[str, Any], field: str) -> Any:
    if field == "order_type_explicit" and label.get("kind") != "open":
        return None
    value = label.get(field)
    return None if _empty(value) else _norm(value)


def load_corpus(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL corpus; raises :class:`~signalos_core.ParseError` naming the bad line."""
    records = []
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ParseError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "kind" not in record:
                raise ParseError(f"{path}:{number}: a labelled record needs 'text' (string) and 'kind'")
            records.append(record)
    return records


def context_for(record: Mapping[str, Any], default_symbol: str | None = None) -> ParseContext | None:
    """The parse context a labelled record carries: its ``reply_to`` and optional ``context`` object."""
    raw = record.get("context") or {}
    reply = record.get("reply_to")
    reply_to = ReplyTo(text=str(reply.get("text", "")), message_id=reply.get("message_id")) if reply else None
    price = raw.get("current_price")
    prices = {str(k).upper(): Decimal(str(v)) for k, v in (raw.get("prices") or {}).items()}
    symbol = raw.get("default_symbol") or default_symbol
    if reply_to is None and price is None and symbol is None and not prices:
        return None
    return ParseContext(
        default_symbol=symbol,
        current_price=Decimal(str(price)) if price is not None else None,
        prices=prices,
        reply_to=reply_to,
    )


def evaluate(
    records: Iterable[Mapping[str, Any]],
    *,
    parser: SignalParser | None = None,
    parser_for: Callable[[Mapping[str, Any]], SignalParser] | None = None,
    progress: Callable[[int], None] | None = None,
    worst: int = 10,
) -> EvalReport:
    """Score ``records``; ``parser_for`` picks a parser per record (e.g. by channel/source template)."""
    default = parser or SignalParser()
    counts = {k: [0, 0] for k in KINDS}
    confusion: dict[str, dict[str, int]] = {k: dict.fromkeys(KINDS, 0) for k in KINDS}
    field_counts = {f: [0, 0, 0] for f in SCORED_FIELDS}
    flag_counts: dict[str, list[int]] = {}
    unsafe: list[str] = []
    misses: list[Miss] = []
    total = exact = amb_total = amb_exact = 0
    realism: dict[str, list[int]] = {}
    for record in records:
        use = parser_for(record) if parser_for else default
        result: ParseResult = use.parse(record["text"], context=context_for(record, use.default_symbol))
        got = result.to_label()
        want_kind, got_kind = str(record["kind"]), got["kind"]
        diff = []
        for name in SCORED_FIELDS:
            want, have = _field(record, name), _field(got, name)
            tpfpfn = field_counts[name]
            if want == have:
                tpfpfn[0] += have is not None
                continue
            diff.append(name)
            tpfpfn[1] += have is not None
            tpfpfn[2] += want is not None
        want_flags, got_flags = set(record.get("flags") or ()), set(got.get("flags") or ())
        for flag in want_flags | got_flags:
            c = flag_counts.setdefault(flag, [0, 0, 0])
            c[0 if flag in want_flags and flag in got_flags else 1 if flag in got_flags else 2] += 1
        total += 1
        ok = not diff
        exact += ok
        if want_kind in counts:
            counts[want_kind][0] += 1
            counts[want_kind][1] += ok
        confusion.setdefault(want_kind, dict.fromkeys(KINDS, 0))[got_kind] += 1
        bucket = realism.setdefault(str(record.get("realism") or "unspecified"), [0, 0])
        bucket[0] += 1
        bucket[1] += ok
        if record.get("ambiguous"):
            amb_total += 1
            amb_exact += ok
        is_unsafe = want_kind in ("noise", "info") and got_kind in _ORDER_KINDS
        if is_unsafe:
            unsafe.append(str(record.get("id", total)))
        if not ok:
            severity = 100 if is_unsafe else 10 + len(diff) if want_kind != got_kind else len(diff)
            misses.append(
                Miss(
                    id=str(record.get("id", total)),
                    expected_kind=want_kind,
                    got_kind=got_kind,
                    fields=diff,
                    severity=severity,
                    text=record["text"][:300],
                    expected={k: record.get(k) for k in diff},
                    got={k: got.get(k) for k in diff},
                )
            )
        if progress is not None:
            progress(1)
    followups = [counts[k] for k in FOLLOW_UPS]
    fu_n, fu_ok = sum(c[0] for c in followups), sum(c[1] for c in followups)
    misses.sort(key=lambda m: (-m.severity, m.id))
    return EvalReport(
        total=total,
        exact=exact,
        exact_rate=_rate(exact, total),
        open_exact_rate=_rate(counts["open"][1], counts["open"][0]),
        followup_exact_rate=_rate(fu_ok, fu_n),
        kinds=[KindScore(k, c[0], c[1], _rate(c[1], c[0])) for k, c in counts.items() if c[0]],
        fields=[_score(name, c) for name, c in field_counts.items()],
        flags=[_score(name, c) for name, c in sorted(flag_counts.items())],
        confusion=confusion,
        unsafe=unsafe,
        misses=misses[:worst],
        ambiguous_exact=amb_exact,
        ambiguous_total=amb_total,
        realism=[KindScore(k, c[0], c[1], _rate(c[1], c[0])) for k, c in sorted(realism.items())],
    )


def _rate(ok: int, n: int) -> float:
    return round(ok / n, 4) if n else 1.0


def _score(name: str, c: list[int]) -> FieldScore:
    tp, fp, fn = c
    return FieldScore(name, tp, fp, fn, _rate(tp, tp + fp), _rate(tp, tp + fn))
