"""Bridge for parser plugins: run a plugin's answer through the same numeric sanity layer as the core.

A plugin (see the plugins area) answers ``parse`` with a plain mapping: ``action`` (open/close/modify),
``symbol``, ``side``, ``order_type``, ``entry``, ``stop_loss``, ``take_profits``, ``confidence``, ``note``.
:func:`result_from_plugin` validates it and returns a :class:`ParseResult` whose flags and confidence come
from the sanity layer (a plugin cannot vouch for a TP on the wrong side); :class:`CallableExtension` wraps
any ``callable(text, context) -> mapping | None`` as a :class:`~signalos_core.parsing.ParserExtension`.
This module does not import the plugin runtime, so parsing stays independent of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from signalos_core._errors import ParseError
from signalos_core.parsing._draft import Draft
from signalos_core.parsing._lexicon import Lexicon, default_lexicon
from signalos_core.parsing._model import ParseContext, ParseResult
from signalos_core.parsing._sanity import confidence as score
from signalos_core.parsing._sanity import finalise
from signalos_core.parsing._tokens import NUM, Tok

__all__ = ["CallableExtension", "result_from_plugin"]

_KINDS = {"open": "open", "close": "close", "modify": "modify"}
_KEYS = frozenset(
    {"action", "symbol", "side", "order_type", "entry", "stop_loss", "take_profits", "confidence", "note"}
)


def _price(value: Any, field: str) -> tuple[Decimal, Tok]:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ParseError(f"plugin result: {field} is not a number: {value!r}") from exc
    if not number.is_finite() or number <= 0:
        raise ParseError(f"plugin result: {field} must be a positive number, got {value!r}")
    tok = Tok(NUM, 0, 0, str(value))
    tok.raw = format(number, "f")
    return number, tok


def result_from_plugin(
    data: Mapping[str, Any], *, source: str, lexicon: Lexicon | None = None, current_price: Decimal | None = None
) -> ParseResult:
    """Validate a plugin's answer and check its prices; raises :class:`~signalos_core.ParseError` naming the field."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ParseError(f"plugin result: unknown field {unknown[0]!r}")
    kind = _KINDS.get(str(data.get("action", "open")))
    if kind is None:
        raise ParseError(f"plugin result: action must be open, close or modify, got {data.get('action')!r}")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise ParseError("plugin result: symbol is required")
    side = data.get("side")
    if side not in (None, "buy", "sell"):
        raise ParseError(f"plugin result: side must be buy or sell, got {side!r}")
    order_type = data.get("order_type", "market")
    if order_type not in ("market", "limit", "stop"):
        raise ParseError(f"plugin result: order_type must be market, limit or stop, got {order_type!r}")
    claimed = data.get("confidence", 1.0)
    if not isinstance(claimed, int | float) or not 0.0 <= float(claimed) <= 1.0:
        raise ParseError(f"plugin result: confidence must be within 0..1, got {claimed!r}")
    lex = lexicon or default_lexicon()
    draft = Draft()
    draft.symbol = lex.resolve_symbol(symbol)[0] or symbol.strip().upper()
    draft.side, draft.side_word = side, side is not None
    draft.order_type, draft.otype_explicit = order_type, order_type != "market"
    if data.get("entry") is not None:
        draft.entry_vals.append(_price(data["entry"], "entry"))
    if data.get("stop_loss") is not None:
        draft.sl = _price(data["stop_loss"], "stop_loss")
    for k, tp in enumerate(data.get("take_profits") or ()):
        draft.tp.append(_price(tp, f"take_profits[{k}]"))
    fields, flags, _ = finalise(draft, lex, current_price)
    if kind != "open":
        fields = {"symbol": fields["symbol"], "side": fields["side"]}
        flags = set()
    return ParseResult(
        kind=kind,  # type: ignore[arg-type]
        flags=tuple(sorted(flags)),
        confidence=min(float(claimed), score(flags)),
        source=source,
        **fields,
    )


class CallableExtension:
    """A :class:`~signalos_core.parsing.ParserExtension` around ``call(text, context) -> mapping | None``.

    The call's answer goes through :func:`result_from_plugin`; an invalid answer or an exception from the
    call is treated as "no answer" (the core grammar's result stands), and counted in ``failures``.
    """

    def __init__(self, call: Callable[[str, ParseContext | None], Mapping[str, Any] | None], *, name: str) -> None:
        self.call = call
        self.name = name
        self.failures = 0

    def parse(self, text: str, context: ParseContext | None) -> ParseResult | None:
        """Ask the wrapped callable; ``None`` when it declines or fails."""
        try:
            answer = self.call(text, context)
            if answer is None:
                return None
            symbol = answer.get("symbol") if isinstance(answer, Mapping) else None
            price = context.price_for(str(symbol).upper()) if context else None
            return result_from_plugin(answer, source=self.name, current_price=price)
        except Exception:
            self.failures += 1
            return None
