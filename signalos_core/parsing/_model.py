"""Public result and context types of the signal parser (msgspec Structs: immutable, fast, JSON-ready)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec

__all__ = ["Action", "Kind", "OrderType", "ParseContext", "ParseResult", "ReplyTo", "Side", "Span"]

Kind = Literal["open", "modify", "close", "cancel", "info", "noise"]
Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop"]

# Keys each action always carries in the labelled format, even when null (e.g. close_partial's fraction).
_ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "move_sl": ("to",),
    "modify_tp": ("tp_index", "to"),
    "modify_entry": ("to",),
    "close": ("target",),
    "close_partial": ("fraction",),
    "tp_hit": ("tp_index",),
}
_ACTION_FIELDS = ("to", "tp_index", "fraction", "target", "side_filter", "scope", "pips", "amount", "price")


class Span(msgspec.Struct, frozen=True):
    """Where a field came from: ``text[start:end]`` of the original message and the rule that bound it."""

    field: str
    start: int
    end: int
    rule: str


class ReplyTo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The message a follow-up replies to (its text is parsed to resolve symbol and side)."""

    text: str
    message_id: str | None = None


class ParseContext(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the caller knows beyond the text.

    ``default_symbol``: the channel's instrument when a message names none. ``current_price``: a reference
    price (enables market/limit/stop from entry vs price, shorthand expansion and pip conversion).
    ``prices``: reference prices per canonical symbol, for messages about several instruments (used before
    ``current_price``). ``reply_to``: the replied-to message.
    """

    default_symbol: str | None = None
    current_price: Decimal | None = None
    prices: dict[str, Decimal] = msgspec.field(default_factory=dict)
    reply_to: ReplyTo | None = None

    def price_for(self, symbol: str | None) -> Decimal | None:
        """The reference price for ``symbol``: its entry in ``prices``, else ``current_price``."""
        if symbol is not None and symbol in self.prices:
            return self.prices[symbol]
        return self.current_price


class Action(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One follow-up action (``move_sl``, ``close_partial``, ``tp_hit``...) with its arguments."""

    action: str
    to: Decimal | str | None = None
    tp_index: int | str | None = None
    fraction: Decimal | None = None
    target: str | None = None
    side_filter: Side | None = None
    scope: str | None = None
    pips: Decimal | None = None
    amount: Decimal | None = None
    price: Decimal | None = None

    def to_label(self) -> dict[str, Any]:
        """The action in the labelled-corpus format (required keys kept even when null)."""
        out: dict[str, Any] = {"action": self.action}
        required = _ACTION_KEYS.get(self.action, ())
        for key in _ACTION_FIELDS:
            value = getattr(self, key)
            if value is not None or key in required:
                out[key] = value
        return out


class ParseResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Structured reading of one message.

    Field names and values follow the labelling rules of the dev corpus (see docs/signal-parsing.md).
    ``spans`` says where each field came from; ``confidence`` is 0-1 and ``needs_confirmation`` is true when
    it is below the configured threshold. ``signals`` lists every order of a multi-order message (the top
    level repeats the first); ``replied`` is the replied-to order, parsed, when a follow-up was given one.
    """

    kind: Kind
    symbol: str | None = None
    side: Side | None = None
    side_inferred: bool = False
    order_type: OrderType | None = None
    order_type_explicit: bool | None = None
    entry: Decimal | tuple[Decimal, Decimal] | None = None
    entries: tuple[Decimal, ...] = ()
    sl: Decimal | None = None
    tp: tuple[Decimal, ...] = ()
    tp_open: bool = False
    sl_pips: Decimal | None = None
    tp_pips: tuple[Decimal, ...] = ()
    entry_shorthand: tuple[Decimal, ...] = ()
    sl_shorthand: Decimal | None = None
    tp_shorthand: tuple[Decimal, ...] = ()
    price_unit: str | None = None
    lot: Decimal | None = None
    risk_percent: Decimal | None = None
    leverage: Decimal | None = None
    quantity: str | None = None
    action: Action | None = None
    actions: tuple[Action, ...] = ()
    context_symbol: str | None = None
    reply_to: ReplyTo | None = None
    replied: ParseResult | None = None
    flags: tuple[str, ...] = ()
    confidence: float = 0.0
    needs_confirmation: bool = False
    spans: tuple[Span, ...] = ()
    signals: tuple[ParseResult, ...] = ()
    source: str = "core"

    def span(self, field: str) -> Span | None:
        """The first span recorded for ``field`` (``"sl"``, ``"tp[1]"``...), or ``None``."""
        for span in self.spans:
            if span.field == field:
                return span
        return None

    def is_order(self) -> bool:
        """True when acting on this result changes positions or orders (open/modify/close/cancel)."""
        return self.kind in ("open", "modify", "close", "cancel")

    def to_label(self) -> dict[str, Any]:
        """The result in the labelled-corpus format (same keys as ``signals-dev.jsonl``)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "symbol": self.symbol,
            "side": self.side,
            "order_type": self.order_type,
        }
        if self.kind == "open":
            out["order_type_explicit"] = bool(self.order_type_explicit)
        out["entry"] = list(self.entry) if isinstance(self.entry, tuple) else self.entry
        out["sl"] = self.sl
        out["tp"] = list(self.tp)
        optional: dict[str, Any] = {
            "side_inferred": self.side_inferred or None,
            "tp_open": self.tp_open or None,
            "entries": list(self.entries) or None,
            "sl_pips": self.sl_pips,
            "tp_pips": list(self.tp_pips) or None,
            "entry_shorthand": list(self.entry_shorthand) or None,
            "sl_shorthand": self.sl_shorthand,
            "tp_shorthand": list(self.tp_shorthand) or None,
            "price_unit": self.price_unit,
            "lot": self.lot,
            "risk_percent": self.risk_percent,
            "leverage": self.leverage,
            "quantity": self.quantity,
            "action": self.action.to_label() if self.action else None,
            "actions": [a.to_label() for a in self.actions] or None,
            "context_symbol": self.context_symbol,
            "flags": list(self.flags) or None,
            "signals": [s.to_label() for s in self.signals] or None,
            "replied": self.replied.to_label() if self.replied is not None else None,
        }
        out.update((k, v) for k, v in optional.items() if v is not None)
        out["confidence"] = self.confidence
        out["needs_confirmation"] = self.needs_confirmation
        return out
