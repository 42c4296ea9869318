"""Request/response shapes of the sync API. Push and pull use the library's wire types unchanged, so a device
and the server validate exactly the same structs (``forbid_unknown_fields``, Decimal prices as strings)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from signalos_core.offline import PullResponse, PushRequest, PushResponse

__all__ = ["PullResponse", "PushRequest", "PushResponse", "QuoteIn", "QuoteOut", "SignalCancelIn", "SignalCancelOut"]


class QuoteIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A paper-trading price for one symbol (decimal text, > 0)."""

    price: Decimal

    def __post_init__(self) -> None:
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError("price must be a finite decimal > 0")


class QuoteOut(msgspec.Struct, frozen=True):
    """The stored quote and how many positions/orders it triggered (SL/TP hits, limit fills)."""

    symbol: str
    price: Decimal
    triggered: int


class SignalCancelIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Which trading account's user the cancellation applies to."""

    account_id: uuid.UUID


class SignalCancelOut(msgspec.Struct, frozen=True):
    """The recorded cancellation; ``already_cancelled`` when it had been recorded before (idempotent)."""

    signal_id: str
    account_id: uuid.UUID
    user_id: uuid.UUID
    cancelled_at: datetime
    already_cancelled: bool
