"""Parser extensions (the plugin hook) are consulted before or after the core grammar."""

from __future__ import annotations

from decimal import Decimal

from signalos_core.parsing import ParseContext, ParseResult, ParserExtension, SignalParser


class Pipe:
    """Recognises ``SYMBOL|SIDE|ENTRY``."""

    def __init__(self, confidence: float = 0.95) -> None:
        self.confidence = confidence
        self.calls = 0

    def parse(self, text: str, context: ParseContext | None) -> ParseResult | None:
        self.calls += 1
        parts = text.split("|")
        if len(parts) != 3:
            return None
        return ParseResult(
            kind="open",
            symbol=parts[0],
            side="buy" if parts[1] == "B" else "sell",
            entry=Decimal(parts[2]),
            confidence=self.confidence,
            source="pipe",
        )


def test_protocol_is_runtime_checkable() -> None:
    assert isinstance(Pipe(), ParserExtension)


def test_before_extension_wins_when_it_answers() -> None:
    ext = Pipe()
    parser = SignalParser(before=[ext])
    assert parser.parse("XAUUSD|B|2330").source == "pipe"
    assert parser.parse("GOLD BUY 2330 SL 2320 TP 2340").source == "core"
    assert ext.calls == 2


def test_after_extension_only_for_noise_or_unsure_results_and_only_if_more_confident() -> None:
    ext = Pipe()
    parser = SignalParser(after=[ext])
    assert parser.parse("XAUUSD|B|2330").source == "pipe"  # core says noise
    assert parser.parse("GOLD BUY 2330 SL 2320 TP 2340").source == "core"
    assert ext.calls == 1  # not asked for a confident core result
    weak = SignalParser(after=[Pipe(confidence=0.1)])
    assert weak.parse("XAUUSD|B|2330").kind == "noise"
