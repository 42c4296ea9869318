"""The numeric sanity layer flags inconsistent prices, lowers the confidence and never rewrites a value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from signalos_core.parsing import ParseError, SignalParser, parse


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("USDJPY SELL NOW 108.70 SL 109.50 TP 108.90", "tp_wrong_side"),
        ("buy BTCUSD sl=60000 tp=50000", "tp_wrong_side"),
        ("EURUSD BUY 1.0850 SL 1.0900 TP 1.0950", "sl_wrong_side"),
        ("GOLD BUY 2330 SL 2320 TP 2350 TP 2340", "tp_unordered"),
        ("GOLD SELL 2330 SL 2336 TP 2325 TP 2322 TP 2222", "tp_implausible"),
        ("EURUSD BUY 1.0850 SL 1.0820 TP 10.900", "price_implausible"),
        ("GOLD BUY 2330 SL 2320 TP 2340 TP 2340", "duplicate_tp"),
        ("GOLD BUY 2330 SL 2330 TP 2340", "sl_at_entry"),
        ("Sell Gbpnzd at cmp 1.9610\nTp1 1.9517\nSl 1 9786", "space_as_decimal"),
        ("XUAUSD SELL 2330 SL 2340 TP 2320", "symbol_typo"),
        ("Gold buy now\n@2312\n.5 - 2308.5\nSl 2307\nTp 2318", "linebreak_in_number"),
        ("Gold buy 2360.50\nSl: 2354.50\nTp1: 2364.50\nTp2: 2368.502302.722302.72", "corrupted_number"),
        ("GOLD BUY 2330 TP 2340", "missing_sl"),
        ("GOLD BUY NOW", "incomplete"),
        ("EURUSD SELL LIMIT\nSL 1.1100\nTP 1.0900", "pending_without_price"),
        ("Entry: 2330\nSL: 2320\nTP: 2345", "missing_symbol"),
        ("Entry: 2330\nSL: 2320\nTP: 2345", "side_inferred"),
        ("USDJPY sell 13.50 sl 114.00 tp 112.50", "price_typo"),
        ("GOLD BUY NOW 👇 levels in the chart", "levels_in_image"),
        ("Kaufe DAX Put Optionsschein Basispreis 15000 EK 1.25", "out_of_scope"),
    ],
)
def test_hazards_are_flagged_and_lower_confidence(text: str, flag: str) -> None:
    result = parse(text)
    assert result.kind == "open", result.to_label()
    assert flag in result.flags, result.flags
    assert result.confidence < 1.0


def test_values_are_never_corrected() -> None:
    result = parse("USDJPY SELL NOW 108.70 SL 109.50 TP 108.90")
    assert result.tp == (Decimal("108.90"),)
    assert result.needs_confirmation
    typo = parse("GOLD SELL 2330 SL 2336 TP 2325 TP 2322 TP 2222")
    assert typo.tp[-1] == Decimal("2222")
    corrupted = parse("Gold buy 2360.50\nSl: 2354.50\nTp1: 2364.50\nTp2: 2368.502302.722302.72")
    assert corrupted.tp == (Decimal("2364.50"), Decimal("2368.50"))


def test_clean_signal_is_confident() -> None:
    result = parse("EURUSD BUY 1.0850 SL 1.0820 TP 1.0900")
    assert result.confidence == 1.0
    assert not result.needs_confirmation
    assert result.flags == ()


def test_threshold_is_configurable() -> None:
    text = "GOLD BUY 2330 TP 2340"  # missing SL: confidence 0.9
    assert not SignalParser().parse(text).needs_confirmation
    assert SignalParser(confirm_below=0.95).parse(text).needs_confirmation
    assert not SignalParser(confirm_below=0.0).parse("USDJPY SELL 108.70 SL 109.50 TP 108.90").needs_confirmation


@pytest.mark.parametrize("bad", [{"confirm_below": 1.5}, {"confirm_below": -0.1}, {"advice": "maybe"}])
def test_bad_parser_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ParseError):
        SignalParser(**bad)  # type: ignore[arg-type]


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(ParseError, match="str"):
        parse(b"GOLD BUY")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "Signal 12\nEURUSD BUY 1.0850 SL 1.0820 TP 1.0900",
        "EURUSD BUY 1.0850 SL 1.0820 TP 1.0900 lot 0.10 leverage 1:100",
        "EURUSD BUY 1.0850 SL 1.0820 TP 1.0900\n📅 2024.05.14 ⏰ 10:30",
        "1) EURUSD BUY 1.0850 SL 1.0820 TP 1.0900 (2% risk)",
        "EURUSD BUY 1.0850 SL 1.0820 (-30 pips) TP 1.0900 (+50 pips) 1H chart",
    ],
)
def test_numbers_that_are_not_prices_never_become_levels(text: str) -> None:
    result = parse(text)
    assert (result.entry, result.sl, result.tp) == (Decimal("1.0850"), Decimal("1.0820"), (Decimal("1.0900"),))
