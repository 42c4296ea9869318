"""The execution-provider interface and a paper-trading implementation of it.

A real broker connection implements :class:`ExecutionProvider` too. The contract that makes offline sync safe:
``place_order`` and ``close_position`` are idempotent on the client order id (derived from the action id), and
``find_order`` lets the server reconcile after an ambiguous failure before it decides anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

import msgspec

from signalos_core._errors import ExecutionUnavailableError
from signalos_core.offline._actions import Side
from signalos_core.offline._protocol import OrderView, PositionView

__all__ = ["ExecutionProvider", "Fill", "OrderRequest", "PaperBroker"]


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An order to place; ``client_order_id`` is the idempotency key the provider dedupes on."""

    client_order_id: str
    order_id: str
    position_id: str
    symbol: str
    side: Side
    volume: Decimal
    order_type: Literal["market", "limit"] = "market"
    limit_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    signal_id: str | None = None


@runtime_checkable
class ExecutionProvider(Protocol):
    """Where orders go. Every method may raise ``ExecutionUnavailableError`` (the server answers retryable)."""

    def quote(self, account: str, symbol: str) -> Decimal | None:
        """The current price of ``symbol``, or None when there is none (the server then fails closed)."""
        ...

    def find_order(self, account: str, client_order_id: str) -> OrderView | None:
        """The order placed (or the close sent) under ``client_order_id``, if the provider has seen it."""
        ...

    def place_order(self, account: str, request: OrderRequest) -> OrderView:
        """Place an order; placing the same ``client_order_id`` again returns the existing order."""
        ...

    def position(self, account: str, position_id: str) -> PositionView | None:
        """One position (open or closed), or None if unknown."""
        ...

    def order(self, account: str, order_id: str) -> OrderView | None:
        """One order, or None if unknown."""
        ...

    def modify_position(
        self, account: str, position_id: str, *, stop_loss: Decimal | None, take_profit: Decimal | None
    ) -> PositionView:
        """Set SL/TP of an open position; returns the new state (version + 1)."""
        ...

    def close_position(self, account: str, position_id: str, *, client_order_id: str) -> PositionView:
        """Close an open position by id (never by an opposite order); idempotent on ``client_order_id``."""
        ...

    def cancel_order(self, account: str, order_id: str) -> OrderView:
        """Cancel a working order; returns the new state."""
        ...

    def snapshot(self, account: str) -> tuple[list[PositionView], list[OrderView]]:
        """Open positions and working orders of the account."""
        ...


@dataclass(frozen=True)
class Fill:
    """One execution the paper broker performed (the audit trail tests count to prove at-most-once)."""

    account: str
    client_order_id: str
    position_id: str
    price: Decimal
    kind: Literal["open", "close"]


@dataclass
class _Account:
    positions: dict[str, PositionView] = field(default_factory=dict)
    orders: dict[str, OrderView] = field(default_factory=dict)
    requests: dict[str, OrderRequest] = field(default_factory=dict)
    by_client_id: dict[str, str] = field(default_factory=dict)  # client order id -> order id
    closes: dict[str, str] = field(default_factory=dict)  # close client order id -> position id


class PaperBroker:
    """Paper trading: market orders fill at the last price of the feed; SL/TP and limits trigger on updates.

    Not thread-safe: the sync server applies one batch at a time per account.
    """

    name = "paper"

    def __init__(self, prices: dict[str, Decimal] | None = None) -> None:
        self._prices: dict[str, Decimal] = dict(prices or {})
        self._accounts: dict[str, _Account] = {}
        self.available = True
        self.fills: list[Fill] = []

    # -------------------------------------------------------------- price feed
    def set_price(self, symbol: str, price: Decimal) -> list[PositionView]:
        """Feed a new price; fills crossed limit orders and closes positions whose SL/TP is hit.

        Returns the positions that changed.
        """
        if not price.is_finite() or price <= 0:
            raise ValueError(f"price for {symbol} must be a positive finite Decimal, got {price}")
        self._prices[symbol] = price
        changed: list[PositionView] = []
        for account_id, account in self._accounts.items():
            for order in list(account.orders.values()):
                if order.status == "working" and order.symbol == symbol and _limit_crossed(order, price):
                    changed.append(self._fill(account_id, account, account.requests[order.client_order_id]))
            for position in list(account.positions.values()):
                if position.status == "open" and position.symbol == symbol:
                    reason = _exit_hit(position, price)
                    if reason is not None:
                        changed.append(self.close_externally(account_id, position.position_id, reason=reason))
        return changed

    def close_externally(self, account: str, position_id: str, *, reason: str = "provider") -> PositionView:
        """Close a position from the provider side (SL/TP, margin call, manual at the broker)."""
        acct = self._account(account)
        position = acct.positions[position_id]
        price = self._prices[position.symbol]
        closed = msgspec.structs.replace(
            position, status="closed", version=position.version + 1, close_price=price, close_reason=reason
        )
        acct.positions[position_id] = closed
        self.fills.append(Fill(account, f"{reason}:{position_id}", position_id, price, "close"))
        return closed

    # -------------------------------------------------------------- ExecutionProvider
    def quote(self, account: str, symbol: str) -> Decimal | None:
        """The last fed price of ``symbol``."""
        self._check_available()
        return self._prices.get(symbol)

    def find_order(self, account: str, client_order_id: str) -> OrderView | None:
        """Reconcile by client order id (opens and closes)."""
        self._check_available()
        acct = self._account(account)
        order_id = acct.by_client_id.get(client_order_id)
        if order_id is not None:
            return acct.orders[order_id]
        position_id = acct.closes.get(client_order_id)
        if position_id is None:
            return None
        position = acct.positions[position_id]
        return OrderView(
            order_id=client_order_id,
            client_order_id=client_order_id,
            symbol=position.symbol,
            side="sell" if position.side == "buy" else "buy",
            volume=position.volume,
            status="filled",
            version=1,
            position_id=position_id,
        )

    def place_order(self, account: str, request: OrderRequest) -> OrderView:
        """Place (or, for a known client order id, return) an order."""
        self._check_available()
        acct = self._account(account)
        existing = acct.by_client_id.get(request.client_order_id)
        if existing is not None:
            return acct.orders[existing]
        acct.requests[request.client_order_id] = request
        acct.by_client_id[request.client_order_id] = request.order_id
        if request.order_type == "limit":
            acct.orders[request.order_id] = OrderView(
                order_id=request.order_id,
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                side=request.side,
                volume=request.volume,
                status="working",
                version=1,
                limit_price=request.limit_price,
            )
            price = self._prices.get(request.symbol)
            if price is not None and _limit_crossed(acct.orders[request.order_id], price):
                self._fill(account, acct, request)
            return acct.orders[request.order_id]
        if request.symbol not in self._prices:
            del acct.requests[request.client_order_id], acct.by_client_id[request.client_order_id]
            raise ExecutionUnavailableError(f"no price for {request.symbol}", provider=self.name)
        self._fill(account, acct, request)
        return acct.orders[request.order_id]

    def position(self, account: str, position_id: str) -> PositionView | None:
        """One position by id."""
        self._check_available()
        return self._account(account).positions.get(position_id)

    def order(self, account: str, order_id: str) -> OrderView | None:
        """One order by id."""
        self._check_available()
        return self._account(account).orders.get(order_id)

    def modify_position(
        self, account: str, position_id: str, *, stop_loss: Decimal | None, take_profit: Decimal | None
    ) -> PositionView:
        """Set SL/TP; the caller has checked the position is open and at the expected version."""
        self._check_available()
        acct = self._account(account)
        position = acct.positions[position_id]
        if position.status != "open":
            raise ValueError(f"position {position_id} is closed")
        updated = msgspec.structs.replace(
            position, stop_loss=stop_loss, take_profit=take_profit, version=position.version + 1
        )
        acct.positions[position_id] = updated
        return updated

    def close_position(self, account: str, position_id: str, *, client_order_id: str) -> PositionView:
        """Close by id at the last price; a second call (same id, or already closed) changes nothing."""
        self._check_available()
        acct = self._account(account)
        position = acct.positions[position_id]
        if position.status == "closed":
            return position
        price = self._prices[position.symbol]
        closed = msgspec.structs.replace(
            position, status="closed", version=position.version + 1, close_price=price, close_reason="client"
        )
        acct.positions[position_id] = closed
        acct.closes[client_order_id] = position_id
        self.fills.append(Fill(account, client_order_id, position_id, price, "close"))
        return closed

    def cancel_order(self, account: str, order_id: str) -> OrderView:
        """Cancel a working order."""
        self._check_available()
        acct = self._account(account)
        order = acct.orders[order_id]
        if order.status != "working":
            raise ValueError(f"order {order_id} is {order.status}")
        cancelled = msgspec.structs.replace(order, status="cancelled", version=order.version + 1)
        acct.orders[order_id] = cancelled
        return cancelled

    def snapshot(self, account: str) -> tuple[list[PositionView], list[OrderView]]:
        """Open positions and working orders, sorted by id so snapshots compare equal."""
        self._check_available()
        acct = self._account(account)
        positions = sorted((p for p in acct.positions.values() if p.status == "open"), key=lambda p: p.position_id)
        orders = sorted((o for o in acct.orders.values() if o.status == "working"), key=lambda o: o.order_id)
        return positions, orders

    def export_account(self, account: str) -> bytes:
        """The account's positions, orders and dedupe keys as JSON (a service persists it with its records)."""
        return msgspec.json.encode(self._account(account))

    def import_account(self, account: str, data: bytes) -> None:
        """Restore an account exported by :meth:`export_account` (replacing what this broker holds for it)."""
        self._accounts[account] = msgspec.json.decode(data, type=_Account)

    def prices(self) -> dict[str, Decimal]:
        """The last price of every symbol fed."""
        return dict(self._prices)

    def all_positions(self, account: str) -> Iterable[PositionView]:
        """Every position the account ever had (tests and reports)."""
        return tuple(self._account(account).positions.values())

    # -------------------------------------------------------------- internals
    def _account(self, account: str) -> _Account:
        return self._accounts.setdefault(account, _Account())

    def _check_available(self) -> None:
        if not self.available:
            raise ExecutionUnavailableError("paper broker is offline (simulated outage)", provider=self.name)

    def _fill(self, account_id: str, acct: _Account, request: OrderRequest) -> PositionView:
        price = request.limit_price if request.order_type == "limit" else self._prices[request.symbol]
        if price is None:  # pragma: no cover - the server only builds limit requests with a limit price
            raise ValueError(f"limit order {request.client_order_id} has no limit price")
        base = acct.orders.get(request.order_id)
        acct.orders[request.order_id] = OrderView(
            order_id=request.order_id,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            volume=request.volume,
            status="filled",
            version=1 if base is None else base.version + 1,
            limit_price=request.limit_price,
            position_id=request.position_id,
        )
        position = PositionView(
            position_id=request.position_id,
            symbol=request.symbol,
            side=request.side,
            volume=request.volume,
            open_price=price,
            version=1,
            status="open",
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            signal_id=request.signal_id,
        )
        acct.positions[request.position_id] = position
        self.fills.append(Fill(account_id, request.client_order_id, request.position_id, price, "open"))
        return position


def _limit_crossed(order: OrderView, price: Decimal) -> bool:
    if order.limit_price is None:
        return False
    return price <= order.limit_price if order.side == "buy" else price >= order.limit_price


def _exit_hit(position: PositionView, price: Decimal) -> str | None:
    long = position.side == "buy"
    if position.stop_loss is not None and (price <= position.stop_loss if long else price >= position.stop_loss):
        return "stop_loss"
    if position.take_profit is not None and (price >= position.take_profit if long else price <= position.take_profit):
        return "take_profit"
    return None
