"""The seams to the parser and the compliance engine, as small Protocols.

The offline client and the sync server depend only on these, so any implementation plugs in: the real
``signalos_core.parsing`` parser and ``signalos_core.compliance`` engine through a thin adapter, or
:class:`SimpleLimits` (a small, complete limits check) where no profile engine is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

import msgspec

from signalos_core.offline._actions import (
    Action,
    OpenPayload,
    Price,
    SettingValue,
    Side,
    Symbol,
    Volume,
    check_positive,
)
from signalos_core.offline._protocol import OrderView, PositionView

__all__ = [
    "AccountView",
    "AdvisoryDecision",
    "ComplianceAdvisor",
    "SignalIntent",
    "SignalParser",
    "SimpleLimits",
]


class AccountView(msgspec.Struct, frozen=True):
    """What a compliance check sees: settings, open positions and working orders (server or cached)."""

    settings: Mapping[str, SettingValue]
    positions: Sequence[PositionView] = ()
    orders: Sequence[OrderView] = ()


class AdvisoryDecision(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Allowed or not; a denial names the rule (``rule_id`` becomes ``rejected:compliance:<rule_id>``)."""

    allowed: bool
    rule_id: str | None = None
    reason: str = ""


@runtime_checkable
class ComplianceAdvisor(Protocol):
    """Check an order intent against a compliance profile. On the device it is advisory; the server decides."""

    def advise(self, action: Action, account: AccountView) -> AdvisoryDecision:
        """Decide for one action (only ``open`` actions are checked)."""
        ...


class SignalIntent(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One trading intent a parser found in a message, in the terms the offline client needs."""

    action: Literal["open", "close", "modify", "cancel"]
    signal_id: str
    symbol: Symbol | None = None
    side: Side | None = None
    volume: Volume | None = None
    #: Entry price quoted by the signal; used as the market reference price when present.
    entry: Price | None = None
    limit_price: Price | None = None
    stop_loss: Price | None = None
    take_profit: Price | None = None
    #: Set when the intent must not be recorded automatically (low confidence, unsupported order type...):
    #: the client reports it as skipped with this reason instead.
    skip_reason: str | None = None

    def __post_init__(self) -> None:
        check_positive(volume=self.volume, entry=self.entry, limit_price=self.limit_price)
        check_positive(stop_loss=self.stop_loss, take_profit=self.take_profit)


@runtime_checkable
class SignalParser(Protocol):
    """Turn message text into intents (an adapter maps the real parser's result onto :class:`SignalIntent`)."""

    def parse(self, text: str, *, context: Mapping[str, object] | None) -> Sequence[SignalIntent]:
        """Parse one message; no intents for chatter. ``context`` carries channel and message ids."""
        ...


class SimpleLimits:
    """A minimal complete profile: optional maximum volume per order and an optional symbol allow-list.

    Rule ids: ``max_lot`` (volume > ``max_volume``; equal is allowed) and ``symbol_not_allowed``. Mutable on
    purpose: tightening it between pushes models a profile change on the server.
    """

    def __init__(self, *, max_volume: Decimal | None = None, symbols: frozenset[str] | None = None) -> None:
        self.max_volume = max_volume
        self.symbols = symbols

    def advise(self, action: Action, account: AccountView) -> AdvisoryDecision:
        """See :meth:`ComplianceAdvisor.advise`."""
        payload = action.payload
        if not isinstance(payload, OpenPayload):
            return AdvisoryDecision(allowed=True)
        if self.symbols is not None and payload.symbol not in self.symbols:
            return AdvisoryDecision(False, "symbol_not_allowed", f"{payload.symbol} is not in the allowed symbols")
        if self.max_volume is not None and payload.volume > self.max_volume:
            return AdvisoryDecision(False, "max_lot", f"volume {payload.volume} exceeds the maximum {self.max_volume}")
        return AdvisoryDecision(allowed=True)
