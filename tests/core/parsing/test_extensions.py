"""Parser extensions (the plugin hook) are consulted before or after the core grammar."""

from __future__ import annotations

from decimal import Decimal

import pytest

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


def test_plugin_answers_go_through_the_sanity_layer() -> None:
    from signalos_core.parsing import result_from_plugin

    good = result_from_plugin(
        {
            "symbol": "xauusdm",
            "side": "buy",
            "entry": "2330",
            "stop_loss": 2320,
            "take_profits": [2340, 2350],
            "confidence": 0.9,
        },
        source="p1",
    )
    assert (good.kind, good.symbol, good.entry, good.tp) == ("open", "XAUUSD", Decimal(2330), (2340, 2350))
    assert good.confidence == 0.9
    assert good.source == "p1"
    bad = result_from_plugin({"symbol": "XAUUSD", "side": "sell", "entry": 2330, "take_profits": [2340]}, source="p")
    assert "tp_wrong_side" in bad.flags
    assert bad.confidence < 0.6
    close = result_from_plugin({"action": "close", "symbol": "EURUSD", "side": "buy"}, source="p")
    assert (close.kind, close.symbol, close.flags) == ("close", "EURUSD", ())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"symbol": "X", "extra": 1}, "unknown field"),
        ({"symbol": "X", "action": "explode"}, "action"),
        ({"side": "buy"}, "symbol"),
        ({"symbol": "X", "side": "up"}, "side"),
        ({"symbol": "X", "order_type": "fok"}, "order_type"),
        ({"symbol": "X", "confidence": 2}, "confidence"),
        ({"symbol": "X", "entry": "abc"}, "entry"),
        ({"symbol": "X", "stop_loss": -1}, "stop_loss"),
        ({"symbol": "X", "take_profits": [1, "nan"]}, r"take_profits\[1\]"),
    ],
)
def test_invalid_plugin_answers_name_the_field(data: dict[str, object], message: str) -> None:
    from signalos_core.parsing import ParseError, result_from_plugin

    with pytest.raises(ParseError, match=message):
        result_from_plugin(data, source="p")


def test_callable_extension_contains_failures() -> None:
    from signalos_core.parsing import CallableExtension

    def pipe(text: str, context: ParseContext | None) -> dict[str, object] | None:
        if text == "boom":
            raise RuntimeError("plugin bug")
        if text == "junk":
            return {"symbol": "X", "side": "left"}
        if not text.startswith("P|"):
            return None
        return {"symbol": "EURUSD", "side": "buy", "entry": "1.0850", "stop_loss": "1.0820", "take_profits": ["1.09"]}

    ext = CallableExtension(pipe, name="pipe")
    parser = SignalParser(before=[ext])
    assert parser.parse("P|x").source == "pipe"
    assert parser.parse("boom").source == "core"
    assert parser.parse("junk").source == "core"
    assert parser.parse("GOLD BUY 2330 SL 2320 TP 2340").source == "core"
    assert ext.failures == 2
    ctx = ParseContext(current_price=Decimal("1.0800"))
    assert parser.parse("P|x", context=ctx).order_type == "stop"
