"""Request/response shapes of the sync API. Push and pull use the library's wire types unchanged, so a device
and the server validate exactly the same structs (``forbid_unknown_fields``, Decimal prices as strings)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from signalos_core.offline import PullResponse, PushRequest, PushResponse

__all__ = ["PullResponse", "PushRequest", "PushResponse", "QuoteIn", "QuoteOut"]


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
