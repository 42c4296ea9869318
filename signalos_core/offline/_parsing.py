"""The offline client's :class:`SignalParser` over the real signal parser (``signalos_core.parsing``).

Signal ids come from where the message was seen: ``<channel>:<message_id>`` (``:n`` appended for the n-th order
of a multi-order message; characters outside ``[A-Za-z0-9._:-]`` become ``_``), so a follow-up that replies to that message targets the same position. What cannot be
acted on offline is passed on with a ``skip_reason`` (the client reports it, it never guesses): results that need
confirmation, stop orders, price ranges for limit orders, "move to breakeven", "close all", follow-ups without
the message they reply to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

from signalos_core.offline._advice import SignalIntent

__all__ = ["ParserAdapter"]


_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def _ref(*parts: str) -> str:
    """A signal id within the action model's alphabet and length (other characters become ``_``)."""
    return _UNSAFE.sub("_", ":".join(parts))[:80]


def _text(context: Mapping[str, object], key: str) -> str | None:
    value = context.get(key)
    return None if value is None else str(value)


class ParserAdapter:
    """Adapt ``signalos_core.parsing.SignalParser`` (default: the built-in one) to :class:`SignalParser`."""

    def __init__(self, parser: object | None = None, *, accept_unconfirmed: bool = False) -> None:
        from signalos_core import parsing

        self._parser = parser if parser is not None else parsing.SignalParser()
        self._accept_unconfirmed = accept_unconfirmed

    def parse(self, text: str, *, context: Mapping[str, object] | None) -> Sequence[SignalIntent]:
        """Parse one message into intents (see the module docstring for ids and skips)."""
        from signalos_core import parsing

        context = context or {}
        channel = _text(context, "channel") or "unknown"
        message_id = _text(context, "message_id") or "unknown"
        reply_id, reply_text = _text(context, "reply_to_id"), _text(context, "reply_to_text")
        parse_context = parsing.ParseContext(
            reply_to=parsing.ReplyTo(text=reply_text, message_id=reply_id) if reply_text is not None else None
        )
        result = self._parser.parse(text, context=parse_context)  # type: ignore[attr-defined]
        results = result.signals or (result,)
        intents: list[SignalIntent] = []
        for index, item in enumerate(results):
            if not item.is_order():
                continue
            own_id = _ref(channel, message_id, *([str(index + 1)] if len(results) > 1 else []))
            skip = None
            if item.needs_confirmation and not self._accept_unconfirmed:
                skip = f"needs confirmation (confidence {item.confidence:.2f})"
            if item.kind == "open":
                intents.append(self._open(item, own_id, skip))
            else:
                intents.append(self._follow_up(item, _ref(channel, reply_id) if reply_id else None, skip))
        return intents

    @staticmethod
    def _open(item: object, signal_id: str, skip: str | None) -> SignalIntent:
        entry = getattr(item, "entry", None)
        order_type = getattr(item, "order_type", None)
        if isinstance(entry, tuple):
            if order_type != "market":
                skip = skip or "a limit order over a price range cannot be placed as one order"
            entry = (entry[0] + entry[1]) / 2  # a market entry zone: its middle is the reference price
        if order_type == "stop":
            skip = skip or "stop (breakout) orders are not supported offline"
        tp = getattr(item, "tp", ())
        fields: dict[str, object] = {
            "action": "open",
            "signal_id": signal_id,
            "symbol": getattr(item, "symbol", None),
            "side": getattr(item, "side", None),
            "volume": getattr(item, "lot", None),
            "stop_loss": getattr(item, "sl", None),
            "take_profit": tp[0] if tp else None,
            "skip_reason": skip,
        }
        if order_type == "limit" and isinstance(entry, Decimal):
            fields["limit_price"] = entry
        else:
            fields["entry"] = entry
        return SignalIntent(**fields)  # type: ignore[arg-type]

    @staticmethod
    def _follow_up(item: object, target: str | None, skip: str | None) -> SignalIntent:
        kind = getattr(item, "kind", "")
        action = getattr(item, "action", None)
        name = getattr(action, "action", None)
        to = getattr(action, "to", None)
        fields: dict[str, object] = {"action": kind, "signal_id": target or "unknown"}
        if target is None:  # more fundamental than a low confidence: say this first
            skip = "a follow-up needs the message it replies to"
        if kind == "modify":
            if name == "move_sl" and isinstance(to, Decimal):
                fields["stop_loss"] = to
            elif name == "modify_tp" and isinstance(to, Decimal):
                fields["take_profit"] = to
            else:
                skip = skip or f"follow-up {name} ({to}) cannot be applied offline"
        elif kind == "close" and name not in (None, "close"):
            skip = skip or f"{name} cannot be applied offline (only a close of the replied-to signal)"
        fields["skip_reason"] = skip
        return SignalIntent(**fields)  # type: ignore[arg-type]
