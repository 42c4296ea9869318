"""Numeric sanity layer: turns a bound :class:`Draft` into result fields, flags and a confidence.

Checks (each adds a flag and lowers the confidence; values are NEVER changed to "fix" them): TP on the
wrong side of the entry (or of the SL when there is no entry), SL on the wrong side, TPs out of order or
with an implausible gap, prices outside the symbol's band (and a decimal-shift hint), pip annotations
that disagree with the prices. Shorthand prices (last digits only) are expanded only against a reference
price from the context; a zone or TP list written as ``105.70-85`` expands from its own first price.
"""

from __future__ import annotations

import itertools
import operator
from decimal import Decimal
from typing import Any

from signalos_core.parsing._draft import Draft
from signalos_core.parsing._lexicon import Lexicon
from signalos_core.parsing._model import Span
from signalos_core.parsing._tokens import Tok

__all__ = ["PENALTIES", "finalise"]

# Confidence penalty per flag (1.0 - sum, floored at 0.05). Hazards that make a trade unsafe weigh most.
PENALTIES: dict[str, float] = {
    "tp_wrong_side": 0.45,
    "sl_wrong_side": 0.45,
    "price_implausible": 0.45,
    "tp_implausible": 0.35,
    "shorthand_prices": 0.2,
    "needs_reference_price": 0.4,
    "missing_symbol": 0.4,
    "incomplete": 0.35,
    "intention": 0.35,
    "pending_without_price": 0.25,
    "corrupted_number": 0.2,
    "tp_unordered": 0.25,
    "price_scale": 0.1,
    "symbol_typo": 0.15,
    "side_inferred": 0.15,
    "missing_sl": 0.1,
    "space_as_decimal": 0.15,
    "linebreak_in_number": 0.05,
    "advice": 0.35,
    "commentary": 0.25,
    "conditional_sl": 0.1,
    "side_conflict": 0.3,
    "multi_order": 0.05,
    "pips_annotation_mismatch": 0.15,
    "contains_followup_text": 0.2,
    "sl_at_entry": 0.1,
    "sl_at_zone_edge": 0.1,
    "missing_leading_zero": 0.1,
    "duplicate_tp": 0.1,
    "missing_side": 0.5,
    "levels_in_image": 0.5,
    "out_of_scope": 0.5,
}
_TWO = Decimal(2)
_ZEROS = itertools.repeat(0.0)
_FIRST = operator.itemgetter(0)
_HUNDRED = Decimal(100)
_TP_FIELDS = tuple(f"tp[{k}]" for k in range(16))  # span names of the usual TP counts, built once
_OUTLIER_SHARE = Decimal("0.3")  # a price further than 30 % from the message's median is implausible


def _expand_shorthand(full: Decimal, short_tok: Tok) -> Decimal | None:
    """``105.70-85`` -> 105.85: replace the last digits of ``full`` by the shorter number's digits."""
    short = short_tok.raw
    if not short.isdigit():
        return None
    digits = format(full, "f")
    plain = digits.replace(".", "")
    if len(short) >= len(plain.split(".")[0]) and "." not in digits:
        return None
    if len(short) >= len(plain):
        return None
    merged = plain[: len(plain) - len(short)] + short
    point = digits.find(".")
    if point >= 0:
        merged = merged[:point] + "." + merged[point:]
    return Decimal(merged)


def _is_short(tok: Tok, ref: Tok) -> bool:
    return tok.raw.isdigit() and len(tok.raw) < len(ref.raw.split(".")[0].split(",")[0]) and len(ref.raw) >= 3


def _near_reference(short: Decimal, price: Decimal) -> Decimal:
    """Expand last-two-digit shorthand (``56``) against a reference price (2351 -> 2356)."""
    base = (price // 100) * 100
    candidates = (base - 100 + short, base + short, base + 100 + short)
    return min(candidates, key=lambda c: abs(c - price))


class _Final:
    def __init__(self, draft: Draft, lex: Lexicon, current_price: Decimal | None) -> None:
        self.d = draft
        self.lex = lex
        self.price = current_price
        self.flags = set(draft.flags)
        self.spans: list[Span] = []
        self.fields: dict[str, Any] = {}

    def span(self, field: str, tok: Tok | None, rule: str) -> None:
        if tok is not None:
            self.spans.append(Span(field, tok.start, tok.end, rule))

    def run(self) -> tuple[dict[str, Any], set[str], list[Span]]:  # noqa: PLR0915 - the fields in label order
        d = self.d
        f = self.fields
        f["symbol"] = d.symbol
        if d.symbol_tok is not None:
            self.spans.append(Span("symbol", d.symbol_tok.start, d.symbol_tok.end, "symbol alias"))
        info = self.lex.symbol_info(d.symbol) if d.symbol else None
        band = info.band if info else None
        entry_vals = list(d.entry_vals)
        tps = list(d.tp)
        # shorthand within a zone / TP list, expanded from the first full price
        if len(entry_vals) == 2 and _is_short(entry_vals[1][1], entry_vals[0][1]):
            expanded = _expand_shorthand(entry_vals[0][0], entry_vals[1][1])
            if expanded is not None:
                entry_vals[1] = (expanded, entry_vals[1][1])
                self.flags.add("shorthand_prices")
        # _is_short(tps[k][1], tps[0][1]) for each later TP, with the first TP's measures taken once
        first_raw = tps[0][1].raw if len(tps) > 1 else ""
        head_len = len(first_raw.split(".")[0].split(",")[0]) if len(first_raw) >= 3 else 0
        for k in range(1, len(tps) if head_len else 0):
            raw = tps[k][1].raw
            if raw.isdigit() and len(raw) < head_len:
                expanded = _expand_shorthand(tps[k - 1][0], tps[k][1])
                if expanded is not None:
                    tps[k] = (expanded, tps[k][1])
                    self.flags.add("shorthand_prices")
        sl = d.sl
        if band is not None:
            lo, hi = band  # a value inside the band is never re-read (the common case skips the call)
            for vals in (entry_vals, tps):  # in place (both are copies), no comprehension
                for k, (v, t) in enumerate(vals):
                    if not lo <= v <= hi:
                        vals[k] = self._thousands(v, t, band)
            sl = (sl if lo <= sl[0] <= hi else self._thousands(sl[0], sl[1], band)) if sl else None
        # whole message in last-digit shorthand (Persian channels: "56 و 60", "استاپ 63")
        values = (
            [*map(_FIRST, entry_vals), *map(_FIRST, tps), *([sl[0]] if sl else [])]
            if band is not None and band[0] >= _HUNDRED
            else None  # only symbols priced in the hundreds or more can be written in last-digit shorthand
        )
        if values and max(values) < _HUNDRED and all(v == v.to_integral() for v in values):
            self.flags.add("shorthand_prices")
            if self.price is None:
                self.flags.add("needs_reference_price")
                f["entry_shorthand"] = tuple(sorted(v for v, _ in entry_vals))
                f["sl_shorthand"] = sl[0] if sl else None
                f["tp_shorthand"] = tuple(v for v, _ in tps)
                entry_vals, tps, sl = [], [], None
                f["order_type"] = None
            else:
                ref = self.price
                entry_vals = [(_near_reference(v, ref), t) for v, t in entry_vals]
                tps = [(_near_reference(v, ref), t) for v, t in tps]
                sl = (_near_reference(sl[0], ref), sl[1]) if sl else None
        self._entry(entry_vals)
        f["sl"] = sl[0] if sl else None
        self.span("sl", sl[1] if sl else None, "label SL")
        f["tp"] = tuple(map(_FIRST, tps))
        spans = self.spans
        for k, (_, tok) in enumerate(tps):
            spans.append(Span(_TP_FIELDS[k] if k < len(_TP_FIELDS) else f"tp[{k}]", tok.start, tok.end, "label TP"))
        f["tp_open"] = d.tp_open
        f["sl_pips"] = d.sl_pips[0] if d.sl_pips else None
        f["tp_pips"] = tuple(map(_FIRST, d.tp_pips))
        self._side()
        self._order_type()
        self._convert_pips(info.pip if info else None)
        self._checks(band, info.pip if info else None)
        if f["sl"] is None and f.get("sl_shorthand") is None and f["sl_pips"] is None:
            if not f["tp"] and not f["tp_pips"] and not f.get("tp_shorthand") and not d.tp_open:
                self.flags.add("incomplete")
            else:
                self.flags.add("missing_sl")
        if d.order_type in ("limit", "stop") and d.otype_explicit and f["entry"] is None and "entry_shorthand" not in f:
            self.flags.add("pending_without_price")
        f["price_unit"], f["lot"], f["leverage"], f["quantity"] = d.price_unit, d.lot, d.leverage, d.quantity
        f["risk_percent"] = d.risk
        return f, self.flags, self.spans

    def _thousands(self, value: Decimal, tok: Tok, band: tuple[Decimal, Decimal]) -> tuple[Decimal, Tok]:
        """German-style ``15.234`` for a DAX at 15,234: a dot thousands separator (notation, not a digit fix)."""
        raw = tok.raw
        head, dot, tail = raw.partition(".")
        if not (dot and head.isdigit() and tail.isdigit()):
            return value, tok
        if (
            len(raw) <= 7
            and raw.count(".") == 1
            and len(raw.partition(".")[2]) == 3
            and not band[0] <= value <= band[1]
        ):
            scaled = Decimal(raw.replace(".", ""))
            if band[0] <= scaled <= band[1]:
                self.flags.add("thousands_dot")
                return scaled, tok
        if len(head) == 2 and len(tail) >= 2 and band[1] < 10 and not band[0] <= value <= band[1]:
            shifted = Decimal(f"0.{head}{tail}")  # "65.43" for AUDUSD 0.6543: the leading "0." left out
            if band[0] <= shifted <= band[1]:
                self.flags.add("missing_leading_zero")
                return shifted, tok
        return value, tok

    def _entry(self, vals: list[tuple[Decimal, Tok]]) -> None:
        f = self.fields
        f["entries"] = ()
        if not vals:
            f["entry"] = None
            return
        for k, (_, tok) in enumerate(vals):
            self.span("entry" if len(vals) == 1 else f"entry[{k}]", tok, "entry label or first price")
        numbers = list(map(_FIRST, vals))
        if len(numbers) == 1:
            f["entry"] = numbers[0]
            return
        f["entry"] = (min(numbers), max(numbers))
        if self.d.entry_join == "ladder" or len(numbers) > 2:
            f["entries"] = tuple(numbers)
            self.flags.add("multi_entry")

    def _side(self) -> None:
        d, f = self.d, self.fields
        f["side"], f["side_inferred"] = d.side, False
        self.span("side", d.side_tok, "side word")
        if d.side is not None:
            return
        entry = f["entry"]
        ref = (entry[0] + entry[1]) / _TWO if isinstance(entry, tuple) else entry
        sl, tps = f["sl"], f["tp"]
        side = None
        if ref is not None and sl is not None and tps:
            if sl < ref < tps[0]:
                side = "buy"
            elif sl > ref > tps[0]:
                side = "sell"
        elif sl is not None and tps:
            side = "buy" if sl < tps[0] else "sell" if sl > tps[0] else None
        if side is None:
            self.flags.add("missing_side")
            return
        f["side"], f["side_inferred"] = side, True
        self.flags.add("side_inferred")

    def _order_type(self) -> None:
        d, f = self.d, self.fields
        if "order_type" in f:  # shorthand-only: unknowable
            f["order_type_explicit"] = False
            return
        f["order_type"], f["order_type_explicit"] = d.order_type or "market", d.otype_explicit
        self.span("order_type", d.otype_tok, "order-type word")
        entry, price, side = f["entry"], self.price, f["side"]
        if d.otype_explicit or entry is None or price is None or side is None:
            return
        low, high = entry if isinstance(entry, tuple) else (entry, entry)
        if low <= price <= high:
            f["order_type"] = "market"
        elif (side == "buy") == (high < price):
            f["order_type"] = "limit"
        else:
            f["order_type"] = "stop"

    def _convert_pips(self, pip: Decimal | None) -> None:
        """Pip distances become prices only with a reference (context price, else the written entry)."""
        f = self.fields
        if pip is None or self.price is None or f["side"] is None:
            return
        entry = f["entry"]
        ref = self.price if entry is None else (entry[0] + entry[1]) / _TWO if isinstance(entry, tuple) else entry
        sign = Decimal(1) if f["side"] == "buy" else Decimal(-1)
        if f["sl"] is None and f["sl_pips"] is not None:
            f["sl"] = ref - sign * f["sl_pips"] * pip
            self.flags.add("converted_from_pips")
        if not f["tp"] and f["tp_pips"]:
            f["tp"] = tuple(ref + sign * p * pip for p in f["tp_pips"])
            self.flags.add("converted_from_pips")

    def _checks(self, band: tuple[Decimal, Decimal] | None, pip: Decimal | None) -> None:
        f, flags = self.fields, self.flags
        side, entry, sl, tps = f["side"], f["entry"], f["sl"], list(f["tp"])
        low, high = (entry if isinstance(entry, tuple) else (entry, entry)) if entry is not None else (None, None)
        buy = side == "buy"
        if side is not None:
            ref_tp = low if buy else high
            if tps:
                ref = ref_tp if ref_tp is not None else sl
                if ref is not None and ((min(tps) <= ref) if buy else (max(tps) >= ref)):
                    flags.add("tp_wrong_side")
            if sl is not None and low is not None and high is not None and ((sl >= low) if buy else (sl <= high)):
                edge = "sl_at_zone_edge" if low != high else "sl_at_entry"
                flags.add(edge if sl in (low, high) else "sl_wrong_side")
            steps = list(map(operator.sub, tps[1:], tps[:-1]))  # b - a for each pair, without a comprehension
            if steps:  # min/max instead of any() over generators: the same answers, cheaper
                if (min(steps) < 0) if buy else (max(steps) > 0):
                    flags.add("tp_unordered")
                if 0 in steps:
                    flags.add("duplicate_tp")
            scale = abs(tps[0] - (sl if entry is None and sl is not None else ref_tp or tps[0])) if tps else 0
            if sl is not None and ref_tp is not None:
                scale = max(scale, abs(ref_tp - sl))
            if scale and steps and max(map(abs, steps)) > 6 * scale:
                flags.add("tp_implausible")
        prices = [low, high] if low is not None else []  # high is set whenever low is
        if sl is not None:
            prices.append(sl)
        prices += tps
        if band is not None:
            for p in prices:
                if not band[0] <= p <= band[1]:
                    flags.add("price_implausible")
                    if any(band[0] <= p * Decimal(10) ** k <= band[1] for k in (-3, -2, -1, 1, 2, 3)):
                        flags.update(("price_scale", "price_typo"))  # a shifted decimal or a lost digit
        if len(prices) >= 3:
            ordered = sorted(prices)
            median = ordered[len(ordered) // 2]
            spread = median * _OUTLIER_SHARE
            # the distance from the median is largest at the extremes (rounding keeps it monotonic)
            if median and (abs(ordered[-1] - median) > spread or abs(ordered[0] - median) > spread):
                flags.update(("price_implausible", "price_typo"))
        if pip and low is not None and high is not None:
            for _slot, price, pips in self.d.pip_notes:
                actual = {abs(price - low) / pip, abs(price - high) / pip}
                if all(abs(a - pips) > max(Decimal(2), pips / 10) for a in actual):
                    flags.add("pips_annotation_mismatch")


def finalise(draft: Draft, lex: Lexicon, current_price: Decimal | None) -> tuple[dict[str, Any], set[str], list[Span]]:
    """Fields, flags and spans of one order (see module docstring)."""
    return _Final(draft, lex, current_price).run()


def confidence(flags: set[str], base: float = 1.0) -> float:
    """``base`` minus the penalty of each flag, floored at 0.05 and rounded to 3 places."""
    score = base - sum(map(PENALTIES.get, flags, _ZEROS))  # PENALTIES.get(flag, 0.0), without a generator
    return round(max(0.05, min(1.0, score)), 3)
