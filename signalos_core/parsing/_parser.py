"""The parser front: tokenize, classify (follow-up vs new order vs noise), extract, check, score.

``SignalParser`` holds a lexicon (built-in packs plus an optional channel template), the confidence
threshold and parser extensions. Extensions implement :class:`ParserExtension`; ``before`` extensions are
tried first (the first non-``None`` answer wins), ``after`` extensions only when the core grammar found
nothing actionable (noise) or needs confirmation, and their answer replaces the core's only if it is more
confident.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import msgspec

from signalos_core._errors import ParseError
from signalos_core.parsing._draft import Draft
from signalos_core.parsing._followup import FollowUps, scan_followups
from signalos_core.parsing._grammar import extract_orders
from signalos_core.parsing._lexicon import Lexicon, default_lexicon
from signalos_core.parsing._model import Action, Kind, ParseContext, ParseResult, Span
from signalos_core.parsing._sanity import confidence, finalise
from signalos_core.parsing._tokens import NUM, WORD, tokenize

__all__ = ["DEFAULT_CONFIRM_BELOW", "MAX_TEXT_CHARS", "ParserExtension", "SignalParser", "parse"]

DEFAULT_CONFIRM_BELOW = 0.7
MAX_TEXT_CHARS = 20_000
_PRIORITY = (
    "close_all",
    "move_sl",
    "modify_tp",
    "modify_entry",
    "close",
    "close_partial",
    "cancel",
    "tp_hit",
    "sl_hit",
    "entry_triggered",
    "profit_report",
    "hold",
    "commentary",
)
_KIND_OF: dict[str, Kind] = {
    "move_sl": "modify",
    "modify_tp": "modify",
    "modify_entry": "modify",
    "close": "close",
    "close_all": "close",
    "close_partial": "close",
    "cancel": "cancel",
}
_PASSIVE = frozenset({"hold", "commentary"})


@runtime_checkable
class ParserExtension(Protocol):
    """A parser plugin: return a result for formats it recognises, ``None`` otherwise. Must not raise."""

    def parse(self, text: str, context: ParseContext | None) -> ParseResult | None:
        """Parse ``text`` or decline with ``None``."""
        ...


class SignalParser:
    """A configured parser (lexicon, threshold, advice policy, extensions). Thread-safe: it holds no state."""

    def __init__(
        self,
        *,
        lexicon: Lexicon | None = None,
        confirm_below: float = DEFAULT_CONFIRM_BELOW,
        advice: str = "instruction",
        default_symbol: str | None = None,
        before: Sequence[ParserExtension] = (),
        after: Sequence[ParserExtension] = (),
    ) -> None:
        if not 0.0 <= confirm_below <= 1.0:
            raise ParseError(f"confirm_below must be within 0..1, got {confirm_below!r}")
        if advice not in ("instruction", "info"):
            raise ParseError(f"advice must be 'instruction' or 'info', got {advice!r}")
        self.lexicon = lexicon or default_lexicon()
        self.confirm_below = confirm_below
        self.advice = advice
        self.default_symbol = default_symbol
        self.before = tuple(before)
        self.after = tuple(after)

    def parse(self, text: str, *, context: ParseContext | None = None) -> ParseResult:
        """Parse one message; never raises on odd text (only on a non-``str`` argument)."""
        if not isinstance(text, str):
            raise ParseError(f"text must be a str, got {type(text).__name__}")
        text = text[:MAX_TEXT_CHARS]
        for ext in self.before:
            found = ext.parse(text, context)
            if found is not None:
                return self._finish(found)  # the channel's threshold applies to plugin answers too
        result = self._core(text, context)
        if self.after and (result.kind == "noise" or result.needs_confirmation):
            for ext in self.after:
                found = ext.parse(text, context)
                if found is not None and found.confidence > result.confidence:
                    return self._finish(found)
        return result

    # ------------------------------------------------------------------ core grammar
    def _core(self, text: str, context: ParseContext | None) -> ParseResult:
        lex = self.lexicon
        toks = tokenize(text, lex)
        if _plain_chat(toks):
            # no keyword, instrument or number anywhere: nothing below could bind (every rule needs one of
            # them), so most chat skips the follow-up scan and the order grammar
            return self._finish(ParseResult(kind="noise", confidence=0.9))
        reply = context.reply_to if context else None
        follow = scan_followups(toks, text, has_reply=reply is not None)
        drafts = extract_orders(toks, text, lex, set(follow.consumed))
        default_symbol = (context.default_symbol if context else None) or self.default_symbol
        has_default = default_symbol is not None
        short = _Short(toks)
        opened = []
        strong = False
        for d in drafts:  # one strength per draft (plain loops: most messages have one draft and no action)
            strength = _open_strength(d, has_default, short)
            if strength > 0:
                opened.append(d)
                strong = strong or strength >= 2
        if follow.verb_cue and not any(d.has_values() for d in opened):
            strong = False  # "Cancel the EURUSD buy limit": words of an order, but an instruction about one
        actions = follow.actions
        if actions:
            actions = [a for a in actions if a[0].action not in _PASSIVE] or actions
            if follow.defer and all(not _has_value(a[0]) for a in actions):
                actions = []
        if (
            "summary" in follow.present
            and all(a[0].action in ("profit_report", "close", "tp_hit") for a in actions)
            and not any(d.has_levels() for d in drafts)
        ):
            # "results this week: +540 pips", "yesterday's BUY GOLD 2330 -> closed +50": a summary, not a trade
            return self._finish(ParseResult(kind="noise", confidence=0.8))
        if actions:
            hits = any(a[0].action in ("tp_hit", "sl_hit") for a in actions)
            exits = any(a[0].action in ("close", "close_all", "cancel") for a in actions) and not any(
                d.has_levels() for d in opened
            )
            if follow.update or hits or exits or not strong:
                # a hit report inside an order-shaped text is an edited signal reporting progress, and an exit
                # post repeating the entry (no SL/TP) closes a trade: neither is ever a new order
                return self._followup(text, toks, follow, actions, drafts, context, default_symbol)
        if opened:
            if follow.consumed:
                # a compound message: re-read the order without the follow-up's claims on its labels
                drafts = extract_orders(toks, text, lex, set())
                opened = [d for d in drafts if _open_strength(d, has_default, short) > 0] or opened
            return self._open(text, opened, follow, context, default_symbol)
        return self._finish(ParseResult(kind="noise", confidence=0.9 if not _has_prices(toks) else 0.75))

    def _open(
        self,
        text: str,
        drafts: list[Draft],
        follow: FollowUps,
        context: ParseContext | None,
        default_symbol: str | None,
    ) -> ParseResult:
        lex = self.lexicon
        results = []
        for draft in drafts:
            price = context.price_for(draft.symbol or default_symbol) if context else None
            fields, flags, spans = finalise(draft, lex, price)
            if follow.actions and follow.verb_cue:
                flags.add("contains_followup_text")
            if follow.conditional:
                flags.add("conditional_sl")
            if follow.image and not draft.has_levels():
                flags.add("levels_in_image")  # never guess levels that only a picture shows
            if follow.option:
                flags.update(("option", "out_of_scope"))
            if follow.hedge:
                flags.add("commentary")
            if (
                follow.advice
                and draft.side_tok is not None
                and _same_line(text, draft.side_tok.start, follow.advice_at)
            ):
                flags.add("advice")  # "you can buy it from this area"; not a footer like "you can re-enter later"
            if fields["symbol"] is None:
                flags.add("missing_symbol")
                fields["context_symbol"] = default_symbol
            if len(drafts) > 1:
                flags.add("multi_order")
            results.append(
                self._finish(
                    ParseResult(
                        kind="open",
                        flags=tuple(sorted(flags)),
                        spans=tuple(spans),
                        confidence=confidence(flags),
                        **fields,
                    )
                )
            )
        first = results[0]
        if len(results) > 1:
            first = msgspec.structs.replace(first, signals=tuple(results))
        return first

    def _followup(  # noqa: PLR0917 - private helper called once, with the whole parse state
        self,
        text: str,
        toks: list[Any],
        follow: FollowUps,
        found: list[tuple[Action, int, int]],
        drafts: list[Draft],
        context: ParseContext | None,
        default_symbol: str | None,
    ) -> ParseResult:
        named = next((d.symbol for d in drafts if d.symbol), None)
        if named is not None:
            # "POSITION CLOSED / Symbol: BTCUSDm": a close naming no target in its sentence closes the message's symbol
            found = [
                (
                    msgspec.structs.replace(a, target=named)
                    if a.action == "close" and a.target in (None, "reply")
                    else a,
                    s,
                    e,
                )
                for a, s, e in found
            ]
        band = self.lexicon.symbol_info(named or default_symbol or "").band if (named or default_symbol) else None
        if band is not None:
            found = [(_thousands(a, band), s, e) for a, s, e in found]
        ordered = sorted(found, key=lambda a: _PRIORITY.index(a[0].action) if a[0].action in _PRIORITY else 99)
        primary = ordered[0][0]
        kind: Kind = _KIND_OF.get(primary.action, "info")
        flags: set[str] = set()
        symbol = next((d.symbol for d in drafts if d.symbol), None)
        if symbol is None:
            symbol = next((t.sym for t in toks if t.kind == WORD and t.sym), None)
        side = next((d.side for d in drafts if d.side_word), None)
        filters = [a.side_filter for a, _, _ in found if a.side_filter]
        if filters:
            side = filters[0]
        base = 0.9
        reply = context.reply_to if context else None
        context_symbol = None
        # the replied-to message, parsed, lets the caller resolve "breakeven"/"tp1"/"reply" to prices
        replied = self._core(reply.text[:MAX_TEXT_CHARS], None) if reply is not None else None
        if symbol is None:
            if replied is not None:
                context_symbol = replied.symbol or replied.context_symbol
            context_symbol = context_symbol or default_symbol
            if context_symbol is None:
                base -= 0.3
        if follow.advice:
            flags.add("advice")
            if self.advice == "info" and kind != "info":
                kind = "info"
        if not follow.verb_cue:
            base -= 0.1
        spans = tuple(Span(f"actions[{k}]", s, e, a.action) for k, (a, s, e) in enumerate(found))
        return self._finish(
            ParseResult(
                kind=kind,
                symbol=symbol,
                side=side,
                action=primary,
                actions=tuple(a for a, _, _ in found) if len(found) > 1 else (),
                context_symbol=context_symbol,
                reply_to=reply,
                replied=replied if replied is not None and replied.kind == "open" else None,
                flags=tuple(sorted(flags)),
                spans=spans,
                confidence=confidence(flags, base),
            )
        )

    def _finish(self, result: ParseResult) -> ParseResult:
        needs = result.kind not in {"noise", "info"} and result.confidence < self.confirm_below
        if needs != result.needs_confirmation:
            result = msgspec.structs.replace(result, needs_confirmation=needs)
        return result


class _Short:
    """Whether a message has at most five words, counted only if a rule asks (most messages never do)."""

    def __init__(self, toks: list[Any]) -> None:
        self.toks = toks

    def __bool__(self) -> bool:
        return sum(1 for t in self.toks if t.kind == WORD) <= 5


def _open_strength(d: Draft, has_default: bool = False, short: Any = True) -> int:
    """0: not an order; 1: a bare header (side word + symbol, short message); 2: an order with prices or an
    explicit type.

    A channel default symbol counts as a symbol (``BUY NOW`` in a gold-only channel is an order)."""
    symbol = d.symbol is not None or has_default
    if d.side_word:
        if (d.sentiment_only or d.flags & {"intention", "hedged"} or not symbol) and not d.has_levels():
            # "gold looks bullish, 2400 next", "we will buy if...", "gold may sell to 2300", "buy 1 month for $99":
            # an opinion, a plan, a forecast or an ad; an order names its instrument or its levels
            return 0
        if d.entry_vals or (d.sl and d.tp) or d.has_levels() or (symbol and d.otype_explicit):
            return 2
        return 1 if symbol and short else 0
    if d.entry_vals and d.sl and d.tp:
        return 2  # side inferred from the price order; flagged, and missing_symbol when no symbol
    return 0


def _has_value(action: Action) -> bool:
    if action.action == "close":
        return action.target not in (None, "reply")
    return any(v is not None for v in (action.to, action.tp_index, action.pips, action.amount)) or action.action in (
        "close_all",
        "close_partial",
        "cancel",
    )


def _thousands(action: Action, band: tuple[Decimal, Decimal]) -> Action:
    """``SL nachziehen auf 15.250`` on a DAX: a dot thousands separator, as in new orders (notation only)."""
    to = action.to
    if isinstance(to, Decimal) and not band[0] <= to <= band[1] and to.as_tuple().exponent == -3:
        scaled = to.scaleb(3)
        if band[0] <= scaled <= band[1]:
            return msgspec.structs.replace(action, to=scaled.quantize(Decimal(1)))
    return action


def _same_line(text: str, offset: int, others: list[int]) -> bool:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    end = len(text) if end < 0 else end
    return any(start <= other < end for other in others)


def _plain_chat(toks: list[Any]) -> bool:
    for t in toks:  # noqa: SIM110 - a loop, not any() over a generator: this runs for every message
        if t.concepts or t.sym is not None or t.kind == NUM:
            return False
    return True


def _has_prices(toks: list[Any]) -> bool:
    return any(t.kind == 2 and t.ncls == 0 for t in toks)


_DEFAULT: list[SignalParser] = []


def parse(text: str, *, context: ParseContext | None = None) -> ParseResult:
    """Parse one message with the built-in lexicon and default settings (see :class:`SignalParser`)."""
    if not _DEFAULT:
        _DEFAULT.append(SignalParser())
    return _DEFAULT[0].parse(text, context=context)
