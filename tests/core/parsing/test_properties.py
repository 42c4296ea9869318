"""Property tests: the parser never crashes or hangs, and ignores noise a human would ignore."""

from __future__ import annotations

import time
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.parsing import MAX_TEXT_CHARS, ParseContext, ReplyTo, parse

SIGNALS = [
    "GOLD BUY NOW 2350 SL 2340 TP 2360 TP 2370",
    "EURUSD sell limit 1.0850\nsl 1.0880\ntp1 1.0820\ntp2 1.0790",
    "Venta GBPJPY 191.50 SL 192.10 TP 190.80 TP 190.20",
    "USDJPY buy @ 151.20 - 151.00\nStop loss: 150.70\nTake profit: 151.80 / 152.30",
    "Move SL to breakeven",
    "Close half now",
    "Cerramos todo",
    "TP2 hit",
    "Good morning everyone, have a nice weekend",
]
EMOJI = ["🔥", "🚀", "✅", "💰", "📈", "👉", "⭐️", "🙏"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_never_crashes_on_arbitrary_unicode(text: str) -> None:
    result = parse(text)
    assert 0.0 <= result.confidence <= 1.0
    for span in result.spans:
        assert 0 <= span.start <= span.end <= len(text)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789.,-/ :@\nTPSLtpslbuy"), max_size=600))
def test_never_crashes_on_number_soup(text: str) -> None:
    parse(text)


SOUP = [
    "buy",
    "sell",
    "close",
    "sl",
    "tp1",
    "EURUSD",
    "gold",
    "2330",
    "1.0850",
    "-",
    "/",
    "@",
    "\n",
    "✅",
    "$BTC",
    "50%",
    "+20 pips",
    "1)",
    "2018.1.14",
    "10:30",
    "x10",
    "sats",
    "۲۳۴۰",
    "حد ضرر",
    "و",
    "1,5",
    "12,500",
    "1.234,56",
    "2368.502302.72",
    ".5",
    "3⃣",
    "→",
    "İ",
    "𝐁𝐔𝐘",
    "ＸＡＵＵＳＤ",
    "99999999999999999999",
    "1/3",
    "EUR/ NZD",
    "XUAUSD",
    "us30.cash",
    "1 7786",
    "tp open",
    "Sell:",
    "Entry Targets:",
    "1.000.000",
    "12,500.5.3",
]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(SOUP), st.sampled_from([" ", "", "\n"])), max_size=25),
    st.sampled_from([None, "2351", "1.09", "0.0001"]),
    st.booleans(),
)
def test_never_crashes_on_signal_shaped_soup(pieces: list[tuple[str, str]], price: str | None, reply: bool) -> None:
    text = "".join(a + b for a, b in pieces)
    context = ParseContext(
        current_price=Decimal(price) if price else None,
        reply_to=ReplyTo(text=text[::-1]) if reply else None,
        default_symbol="XAUUSD" if reply else None,
    )
    result = parse(text, context=context)
    assert result.to_label()["kind"] == result.kind
    for span in result.spans:
        assert 0 <= span.start <= span.end <= len(text)


def _time(text: str) -> float:
    """CPU time of one parse (CPU, not wall clock: other work on a shared machine must not count)."""
    start = time.process_time()
    parse(text)
    return time.process_time() - start


PIECES = [
    "buy",
    "sell",
    "close",
    "cancel",
    "partial",
    "move",
    "sl",
    "tp",
    "tp1",
    "hit",
    "to",
    "be",
    "EURUSD",
    "gold",
    "1",
    "2330",
    "1.0850",
    "-",
    "/",
    "@",
    ":",
    "\n",
    "🔥",
    "✅",
    "#X",
    "if",
    "don't",
    "50%",
    "+20 pips",
    "entry",
    "limit",
    "now",
    "all",
    "half",
    "1)",
    "2018.1.14",
    "10:30",
    "x10",
    "s&p",
    "a1",
    "1.",
    "1" * 30,
]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=4))
def test_time_grows_linearly(pieces: list[str]) -> None:
    """Repeating any short pattern 20x more must cost about 20x more: no quadratic scans, no catastrophic
    regex backtracking (which would cost 1000x+)."""
    unit = " ".join(pieces) + " "
    small = min(_time(unit * 10) for _ in range(3))
    large = min(_time(unit * 200) for _ in range(2))
    assert large < max(small, 2e-4) * 20 * 5 + 0.25, (unit, small, large)


def test_huge_input_is_bounded() -> None:
    start = time.process_time()
    result = parse("GOLD BUY 2350 SL 2340 TP 2360 " * 5000)
    assert time.process_time() - start < 10  # input is cut at MAX_TEXT_CHARS; ~0.1 s without coverage
    assert result.kind == "open"
    assert all(span.end <= MAX_TEXT_CHARS for span in result.spans)


def _label(text: str) -> dict[str, object]:
    out = parse(text).to_label()
    out.pop("confidence")  # noise changes nothing the human reads; spans move, values must not
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(SIGNALS),
    st.lists(st.sampled_from(["  ", "\t", " \u00a0", "\u2009 ", "   \t "]), min_size=1, max_size=5),
    st.integers(min_value=0, max_value=10_000),
)
def test_whitespace_noise_does_not_change_the_result(text: str, pads: list[str], seed: int) -> None:
    words = text.split(" ")
    noisy = words[0]
    for k, word in enumerate(words[1:]):
        noisy += (pads[(seed + k) % len(pads)] if (seed >> k) & 1 else " ") + word
    # blank lines between lines and padding around them are noise too; breaking a line is not
    noisy = "  " + noisy.replace("\n", " \n\n ") + "\n\n"
    assert _label(noisy) == _label(text)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(SIGNALS), st.integers(min_value=0, max_value=2**20))
def test_case_noise_does_not_change_the_result(text: str, mask: int) -> None:
    noisy = "".join(c.upper() if (mask >> (k % 20)) & 1 else c.lower() for k, c in enumerate(text))
    assert _label(noisy) == _label(text)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(SIGNALS), st.lists(st.sampled_from(EMOJI), min_size=1, max_size=4))
def test_emoji_decoration_does_not_change_the_result(text: str, emoji: list[str]) -> None:
    lines = text.split("\n")
    noisy = "\n".join(f"{emoji[k % len(emoji)]} {line} {emoji[(k + 1) % len(emoji)]}" for k, line in enumerate(lines))
    assert _label(noisy) == _label(text)
