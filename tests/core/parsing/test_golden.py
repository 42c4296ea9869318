"""Pinned parse output: every result (all fields, flags, spans, confidence) of a fixed input set.

The input set is the whole dev corpus (read with the built-in parser and no context, and as the evaluation
reads it: the record's channel template and context) plus machine-made messy inputs (signal-shaped soup,
case/whitespace/emoji/digit-script noise over the corpus, unicode junk). It was recorded from the parser
before its performance work so that every speed-up can be shown to change no output. When a deliberate
behaviour change alters results, regenerate it and review the diff:

    .venv/bin/python tests/core/parsing/test_golden.py --write
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden-results.jsonl"

if __name__ == "__main__":  # pragma: no cover - the --write entry point runs from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from signalos_core.parsing import (  # noqa: E402 - after the path setup of the --write entry point
    ParseContext,
    ReplyTo,
    SignalParser,
    context_for,
    load_corpus,
    load_template,
)

# Pieces of signal-shaped text (labels, prices in several notations, scripts, emoji, follow-up words).
_PIECES = [
    "buy", "sell", "BUY", "Sell", "close", "cancel", "partial", "move", "sl", "SL", "tp", "tp1", "TP2", "tp 3",
    "hit", "to", "be", "breakeven", "EURUSD", "gold", "XAUUSD", "us30.cash", "EUR/ NZD", "BTC / USDT", "$BTC",
    "#MFT", "XUAUSD", "1", "2", "2330", "2350", "1.0850", "1,0850", "12,500", "1.234,56", "2368.502302.72",
    ".5", "65k", "67.5k", "-", "/", "@", ":", "=", "&", "\n", "\n\n", "🔥", "✅", "🔴", "🎯", "🔵", "3⃣",
    "→", "if", "don't", "50%", "risk 2%", "+20 pips", "+$50", "30 pips", "entry", "Entry Targets:",
    "limit", "stop", "now", "all", "half", "1/3", "1)", "2018.1.14", "12/05/2024", "10:30", "x10", "20x",
    "sats", "lot 0.5", "0.01 lots", "۲۳۴۰", "٢٣٥٠", "حد ضرر", "خرید", "و", "İ", "𝐁𝐔𝐘", "ＸＡＵＵＳＤ",
    "99999999999999999999", "1 7786", "tp open", "Sell:", "1.000.000", "12,500.5.3", "Venta", "compra",
    "cerrar", "стоп", "тейк", "покупка", "update", "results", "summary", "you can", "q=0.5", "[", "]",
    "(", ")", "1st", "2nd", "m15", "h4", "stopped out", "sl hit", "move sl to", "close all", "set tp2 to",
]  # fmt: skip
_NOISE_CHARS = [
    *"abcXYZ019 .,:-/@\n\t%$#",
    "\u00a0", "\u2009", "\u200b", "\u2013", "\u2212", "\u060c", "\u066b", "\u06f5", "\u0665", "\uff15", "\uff21",
    "\U0001d400", "\u00b2", "İ", "ß", "é", "ж", "ی", "🔥", "✅", "🔴", "\ufe0f", "\u20e3", "\r", "\x85",
]  # fmt: skip
_PRICES = [None, "2351", "1.09", "0.0001", "151.2", "67000"]
_EMOJI = ["🔥", "🚀", "✅", "💰", "📈", "👉", "⭐️", "🙏"]
_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _channels() -> dict[str, SignalParser]:
    channels = yaml.safe_load((DATA / "channels.yaml").read_text(encoding="utf-8"))
    return {source: load_template(spec).parser() for source, spec in channels.items()}


def _noisy(text: str, rng: random.Random) -> str:
    """A human-ignorable or script variant of a corpus message (case, spacing, emoji, Persian digits)."""
    how = rng.randrange(4)
    if how == 0:
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)
    if how == 1:
        return "  " + text.replace(" ", rng.choice(["  ", "\t", " \u00a0", "\u2009 "])).replace("\n", " \n\n ")
    if how == 2:
        return "\n".join(f"{rng.choice(_EMOJI)} {line} {rng.choice(_EMOJI)}" for line in text.split("\n"))
    return text.translate(_DIGITS)


def _cases() -> Iterator[tuple[str, str, str | None, ParseContext | None]]:
    """(case id, text, channel source or None, context) for every pinned input, in a fixed order."""
    records = load_corpus(DATA / "signals-dev.jsonl")
    channels = _channels()
    for record in records:
        yield f"{record['id']}/plain", record["text"], None, None
        source = str(record.get("source"))
        parser = channels.get(source)
        symbol = parser.default_symbol if parser is not None else None
        yield f"{record['id']}/eval", record["text"], source if parser else None, context_for(record, symbol)
    rng = random.Random(20261128)  # noqa: S311 - reproducible test inputs, not security
    for k, record in enumerate(records):
        yield f"noisy-{k}", _noisy(record["text"], rng), None, None
    for k in range(400):
        pieces = [rng.choice(_PIECES) + rng.choice([" ", "", "\n", "  "]) for _ in range(rng.randrange(1, 26))]
        text = "".join(pieces)
        price = rng.choice(_PRICES)
        reply = rng.random() < 0.25
        context = None
        if price is not None or reply:
            context = ParseContext(
                current_price=Decimal(price) if price else None,
                reply_to=ReplyTo(text=text[::-1]) if reply else None,
                default_symbol="XAUUSD" if reply else None,
            )
        yield f"soup-{k}", text, None, context
    for k in range(150):
        yield f"junk-{k}", "".join(rng.choice(_NOISE_CHARS) for _ in range(rng.randrange(0, 120))), None, None


def _results() -> Iterator[dict[str, Any]]:
    channels = _channels()
    default = SignalParser()
    for case, text, source, context in _cases():
        parser = channels[source] if source is not None else default
        result = parser.parse(text, context=context)
        yield {
            "case": case,
            "text": text,
            "result": json.loads(msgspec.json.encode(result)),
            "label": json.loads(json.dumps(result.to_label(), default=str)),
        }


@pytest.fixture(scope="module")
def pinned() -> dict[str, Mapping[str, Any]]:
    lines = GOLDEN.read_text(encoding="ascii").split("\n")[:-1]
    return {row["case"]: row for row in map(json.loads, lines)}


def test_every_result_is_unchanged(pinned: dict[str, Mapping[str, Any]]) -> None:
    seen = 0
    for row in _results():
        want = pinned[row["case"]]
        assert row["text"] == want["text"], row["case"]  # the inputs themselves are reproducible
        assert row["result"] == want["result"], (row["case"], row["text"])
        assert row["label"] == want["label"], (row["case"], row["text"])
        seen += 1
    assert seen == len(pinned) > 700


def _write() -> None:  # pragma: no cover - maintenance entry point
    with GOLDEN.open("w", encoding="ascii") as fh:
        for row in _results():
            # ASCII-only JSON: a U+2028 or U+0085 inside a text must not split its line when read back
            fh.write(json.dumps(row, sort_keys=True) + "\n")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_golden.py --write")
    _write()
