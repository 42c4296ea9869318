"""The offline action model: what a device records in its outbox and later pushes to the server.

An :class:`Action` is immutable once recorded. Its ``action_id`` (a client-generated UUID) is the identity the
server dedupes on and from which the broker's client order id is derived, so a resend can never execute twice.
The device clock only provides metadata (``created_at_device``) and the intended lifetime
(``expires_at - created_at_device``); the server judges expiry on its own clock (see ``_server.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

import msgspec

__all__ = [
    "ORDER_KINDS",
    "AckPayload",
    "Action",
    "ActionKind",
    "CancelPayload",
    "ClosePayload",
    "ModifyPayload",
    "OpenPayload",
    "Payload",
    "SettingValue",
    "SettingsPayload",
    "Side",
    "client_order_id",
    "close_order_id",
    "order_id_for",
    "position_id_for",
]

ActionKind = Literal["open", "modify", "close", "cancel", "settings", "ack"]
Side = Literal["buy", "sell"]
#: Kinds that become orders at a broker; they are always committed with ``synchronous=FULL``.
ORDER_KINDS: Final[frozenset[str]] = frozenset({"open", "modify", "close", "cancel"})

# msgspec cannot constrain Decimal, so prices and volumes are checked in __post_init__ (finite and > 0).
Price = Decimal
Volume = Decimal
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._/-]+$")]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")]
SettingName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
#: A setting value: settings merge last-writer-wins per field, so values are plain scalars. Decimal amounts are
#: carried as strings (``"0.10"``) so they round-trip exactly; JSON cannot tell a Decimal from text.
SettingValue = bool | int | str | None


class OpenPayload(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag="open"):
    """Open a position: a market order (needs ``ref_price``/``max_deviation`` on the action) or a limit order."""

    symbol: Symbol
    side: Side
    volume: Volume
    order_type: Literal["market", "limit"] = "market"
    limit_price: Price | None = None
    stop_loss: Price | None = None
    take_profit: Price | None = None
    #: The upstream signal this intent copies; an upstream cancellation rejects it (``rejected:signal_cancelled``).
    signal_id: Ref | None = None

    def __post_init__(self) -> None:
        check_positive(volume=self.volume, limit_price=self.limit_price)
        check_positive(stop_loss=self.stop_loss, take_profit=self.take_profit)


class ModifyPayload(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag="modify"):
    """Set the stop loss and take profit of a position (``None`` removes the level)."""

    stop_loss: Price | None = None
    take_profit: Price | None = None

    def __post_init__(self) -> None:
        check_positive(stop_loss=self.stop_loss, take_profit=self.take_profit)


class ClosePayload(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag="close"):
    """Close a whole position (targeted by id; never sent as an opposite order)."""

    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


class CancelPayload(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag="cancel"):
    """Cancel a working (limit) order."""

    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


class SettingsPayload(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag="settings"):
    """Change settings; each field merges last-writer-wins in server order."""

    changes: Annotated[dict[SettingName, SettingValue], msgspec.Meta(min_length=1, max_length=64)]


class AckPayload(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag="ack"):
    """Acknowledge something the server showed (a signal, a notification) so other devices stop showing it."""

    subject: Ref


Payload = OpenPayload | ModifyPayload | ClosePayload | CancelPayload | SettingsPayload | AckPayload


class Action(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One user action recorded on a device (see the module docstring for which fields are trusted)."""

    action_id: uuid.UUID
    device_id: DeviceId
    seq: Annotated[int, msgspec.Meta(ge=1)]
    kind: ActionKind
    created_at_device: AwareDatetime
    expires_at: AwareDatetime
    payload: Payload
    #: Market opens: the price the user saw, and how far the fill may be from it (absolute, same units).
    ref_price: Price | None = None
    max_deviation: Decimal | None = None
    #: modify/close: a position id; cancel: an order id. ``expected_version`` is the version the user acted on.
    target: Ref | None = None
    expected_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    depends_on: tuple[uuid.UUID, ...] = ()

    def __post_init__(self) -> None:
        # msgspec turns a ValueError raised here into a ValidationError on decode, so remote input is checked
        # by the same rules as locally built actions.
        check_positive(ref_price=self.ref_price)
        if self.max_deviation is not None and (not self.max_deviation.is_finite() or self.max_deviation < 0):
            raise ValueError("max_deviation must be a finite Decimal >= 0")
        tag = type(self.payload).__struct_config__.tag
        if tag != self.kind:
            raise ValueError(f"kind {self.kind!r} does not match payload {tag!r}")
        if self.expires_at <= self.created_at_device:
            raise ValueError("expires_at must be after created_at_device")
        if self.action_id in self.depends_on:
            raise ValueError("depends_on must not contain the action itself")
        if isinstance(self.payload, OpenPayload):
            _check_open(self, self.payload)
        elif self.kind in ("modify", "close", "cancel"):
            if self.target is None or self.expected_version is None:
                raise ValueError(f"{self.kind} needs target and expected_version")
        elif self.target is not None or self.expected_version is not None:
            raise ValueError(f"{self.kind} takes no target")

    @property
    def is_order(self) -> bool:
        """True for kinds that reach the execution provider."""
        return self.kind in ORDER_KINDS


def _check_open(action: Action, payload: OpenPayload) -> None:
    if action.target is not None or action.expected_version is not None:
        raise ValueError("open takes no target")
    if payload.order_type == "market":
        if action.ref_price is None or action.max_deviation is None:
            raise ValueError("a market open needs ref_price and max_deviation (never execute at any price)")
        if payload.limit_price is not None:
            raise ValueError("limit_price is only for limit orders")
    elif payload.limit_price is None:
        raise ValueError("a limit open needs limit_price")
    reference = payload.limit_price if payload.limit_price is not None else action.ref_price
    if reference is None:  # pragma: no cover - both branches above guarantee a reference price
        raise ValueError("no entry price")
    if payload.stop_loss is not None and (payload.stop_loss >= reference) == (payload.side == "buy"):
        raise ValueError("stop_loss is on the wrong side of the entry price")
    if payload.take_profit is not None and (payload.take_profit <= reference) == (payload.side == "buy"):
        raise ValueError("take_profit is on the wrong side of the entry price")


def check_positive(**values: Decimal | None) -> None:
    """Raise ValueError naming the first value that is present but not a finite Decimal > 0."""
    for name, value in values.items():
        if value is not None and (not value.is_finite() or value <= 0):
            raise ValueError(f"{name} must be a finite decimal > 0, got {value}")


def client_order_id(action_id: uuid.UUID) -> str:
    """The broker client order id of the order an open action places (stable across resends)."""
    return f"so-{action_id.hex}"


def close_order_id(action_id: uuid.UUID) -> str:
    """The broker client order id of the closing order a close action sends (stable across resends)."""
    return f"sc-{action_id.hex}"


def position_id_for(open_action_id: uuid.UUID) -> str:
    """The id of the position an open action creates, known on the device before the server has seen it."""
    return f"pos-{open_action_id.hex}"


def order_id_for(open_action_id: uuid.UUID) -> str:
    """The id of the order an open action places (the target of a later cancel)."""
    return f"ord-{open_action_id.hex}"
