"""Sync protocol messages and outcome codes, shared by the device (sync engine) and the server.

Every message is a msgspec Struct with ``forbid_unknown_fields``; decode remote bytes with
``msgspec.json.decode(data, type=PushRequest)`` and friends, so invalid input fails with a message naming the
field.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

import msgspec

from signalos_core.offline._actions import (
    Action,
    DeviceId,
    Price,
    SettingValue,
    Side,
    Symbol,
    Volume,
    check_positive,
)

__all__ = [
    "MAX_BATCH",
    "ActionOutcome",
    "OrderView",
    "Outcome",
    "OutcomeCategory",
    "PositionView",
    "PullRequest",
    "PullResponse",
    "PushRequest",
    "PushResponse",
    "PushedAction",
    "ServerState",
]

#: Most actions one push (or one pull page) may carry; keeps server transactions and memory bounded.
MAX_BATCH: Final = 1000

_RULE = r"[a-z0-9][a-z0-9_.-]{0,63}"
_OUTCOME_RE: Final = re.compile(
    r"^(?:applied|duplicate|noop:already_closed|expired:ttl"
    r"|rejected:(?:price_moved|target_changed|signal_cancelled|dependency_rejected|invalid|client_upgrade_required"
    r"|compliance:" + _RULE + ")"
    r"|retryable:" + _RULE + r")$"
)
OutcomeCode = Annotated[str, msgspec.Meta(pattern=_OUTCOME_RE.pattern)]
OutcomeCategory = Literal["applied", "duplicate", "noop", "expired", "rejected", "retryable"]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Outcome(msgspec.Struct, frozen=True):
    """A parsed outcome code: ``category`` plus ``reason`` (the text after the first colon, may be empty)."""

    code: str
    category: OutcomeCategory
    reason: str

    @classmethod
    def parse(cls, code: str) -> Outcome:
        """Parse one of the documented codes; anything else raises ValueError naming the code."""
        cached = _PARSED.get(code) if isinstance(code, str) else None
        if cached is not None:
            return cached
        if not isinstance(code, str) or not _OUTCOME_RE.match(code):
            raise ValueError(f"unknown outcome code {code!r}")
        category, _, reason = code.partition(":")
        parsed = cls(code=code, category=category, reason=reason)  # type: ignore[arg-type]  # regex-checked
        if len(_PARSED) < 4096:  # the code space is small; the bound only guards against hostile rule ids
            _PARSED[code] = parsed
        return parsed

    @property
    def terminal(self) -> bool:
        """Final: never retried. Only ``retryable:*`` is not terminal."""
        return self.category != "retryable"

    @property
    def succeeded(self) -> bool:
        """The action's intent holds on the server (``applied``, or a close that found the position closed)."""
        return self.category in ("applied", "noop")

    @property
    def rule_id(self) -> str | None:
        """The compliance rule of ``rejected:compliance:<rule-id>``, else None."""
        prefix = "compliance:"
        return self.reason[len(prefix) :] if self.reason.startswith(prefix) else None


_PARSED: dict[str, Outcome] = {}


class ActionOutcome(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What the server decided for one action, with the facts it decided on (current price, version...)."""

    action_id: uuid.UUID
    seq: Annotated[int, msgspec.Meta(ge=1)]
    code: OutcomeCode
    message: str = ""
    facts: dict[str, str] = {}
    #: Position in the server's outcome log (the pull cursor); None for retryable outcomes, which are not stored.
    server_seq: Annotated[int, msgspec.Meta(ge=1)] | None = None
    decided_at: AwareDatetime | None = None
    #: For ``duplicate``: the code originally decided, which the client must act on.
    original_code: OutcomeCode | None = None

    @property
    def effective(self) -> Outcome:
        """The outcome to act on: the original one for a duplicate."""
        if self.code == "duplicate" and self.original_code is not None:
            return Outcome.parse(self.original_code)
        return Outcome.parse(self.code)


class PositionView(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A position as the execution provider reports it; ``version`` grows with every change."""

    position_id: str
    symbol: Symbol
    side: Side
    volume: Volume
    open_price: Price
    version: Annotated[int, msgspec.Meta(ge=1)]
    status: Literal["open", "closed"]
    stop_loss: Price | None = None
    take_profit: Price | None = None
    close_price: Price | None = None
    #: client | stop_loss | take_profit | provider
    close_reason: str | None = None
    signal_id: str | None = None

    def __post_init__(self) -> None:
        check_positive(volume=self.volume, open_price=self.open_price, close_price=self.close_price)


class OrderView(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A (limit) order as the execution provider reports it."""

    order_id: str
    client_order_id: str
    symbol: Symbol
    side: Side
    volume: Volume
    status: Literal["working", "filled", "cancelled"]
    version: Annotated[int, msgspec.Meta(ge=1)]
    limit_price: Price | None = None
    position_id: str | None = None

    def __post_init__(self) -> None:
        check_positive(volume=self.volume, limit_price=self.limit_price)


class ServerState(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The account state a device mirrors: positions, orders, settings and cancelled signals."""

    positions: list[PositionView] = []
    orders: list[OrderView] = []
    settings: dict[str, SettingValue] = {}
    cancelled_signals: list[str] = []


class PushedAction(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An action plus its age on the device at push time (monotonic where possible; clamped at zero)."""

    action: Action
    age_ms: Annotated[int, msgspec.Meta(ge=0)]


class PushRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A batch of one device's actions in ascending ``seq`` order."""

    device_id: DeviceId
    sent_at_device: AwareDatetime
    actions: Annotated[list[PushedAction], msgspec.Meta(max_length=MAX_BATCH)]

    def __post_init__(self) -> None:
        last = 0
        for index, item in enumerate(self.actions):
            if item.action.device_id != self.device_id:
                raise ValueError(f"actions[{index}].device_id is not the pushing device")
            if item.action.seq <= last:
                raise ValueError(f"actions[{index}].seq is not ascending")
            last = item.action.seq


class PushResponse(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One outcome per pushed action, in the order pushed."""

    device_id: DeviceId
    server_time: AwareDatetime
    results: list[ActionOutcome]


class PullRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Ask for this device's outcomes after ``cursor`` and the current account state."""

    device_id: DeviceId
    cursor: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH)] = 500


class PullResponse(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Outcomes after the cursor (ascending ``server_seq``), the state, the new cursor, and whether more remain."""

    device_id: DeviceId
    cursor: Annotated[int, msgspec.Meta(ge=0)]
    more: bool
    outcomes: list[ActionOutcome]
    state: ServerState
    server_time: AwareDatetime


def decimal_text(value: Decimal | None) -> str:
    """Render a Decimal fact without exponent noise (``"1.10"`` stays ``"1.10"``)."""
    return "" if value is None else format(value, "f")
