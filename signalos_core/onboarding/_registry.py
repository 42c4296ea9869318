"""Connection testers by kind, the provider-plugin bridge, and the paper test trade.

:class:`ConnectionTesters` is what the wizard and the on-demand test call: it picks the built-in tester for
the ``kind`` of the answers (``mt_bridge``, ``broker_api``, ``paper``, ``telegram``, ``discord``) or asks a
provider plugin (``provider_plugin``) through the plugin contract ``test_connection(config)``. It bounds
concurrency and total time, so a stalled server can never hold a request (or the event loop) longer than
``MAX_TIMEOUT_S`` plus a small margin, and it turns a misbehaving tester into an ``error`` diagnosis.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from signalos_core.offline import OrderRequest, PaperBroker
from signalos_core.onboarding._connect import (
    MAX_TIMEOUT_S,
    MTBridgeTester,
    PaperTester,
    TargetPolicy,
    diagnosis,
)
from signalos_core.onboarding._http import DISCORD_API, TELEGRAM_API, BrokerApiTester, DiscordTester, TelegramTester
from signalos_core.plugins import ConnectionDiagnosis, ConnectionStatus

__all__ = ["ConnectionTester", "ConnectionTesters", "PaperTradeResult", "ProviderLookup", "paper_test_trade"]


class ConnectionTester(Protocol):
    """Anything with the provider contract's ``test_connection`` (async, or sync and run in a thread)."""

    def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis | Awaitable[ConnectionDiagnosis]:
        """Diagnose a connection with ``config``."""
        ...


ProviderLookup = Callable[[str], ConnectionTester | None]
"""Finds the provider plugin with the given id for the current user (None: not installed/active)."""

_MARGIN_S = 2.0


class ConnectionTesters:
    """Connection testers by kind, with bounded concurrency and a hard time limit per test."""

    def __init__(
        self,
        *,
        policy: TargetPolicy | None = None,
        telegram_api: str = TELEGRAM_API,
        discord_api: str = DISCORD_API,
        max_concurrent: int = 16,
    ) -> None:
        policy = policy or TargetPolicy()
        self.policy = policy
        self._testers: dict[str, ConnectionTester] = {
            "mt_bridge": MTBridgeTester(policy),
            "broker_api": BrokerApiTester(policy),
            "paper": PaperTester(),
            "telegram": TelegramTester(policy, telegram_api),
            "discord": DiscordTester(policy, discord_api),
        }
        self._max_concurrent = max_concurrent
        self._semaphores: dict[int, asyncio.Semaphore] = {}

    def register(self, kind: str, tester: ConnectionTester) -> None:
        """Add or replace the tester for ``kind``."""
        self._testers[kind] = tester

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds with a tester (``provider_plugin`` is always accepted and resolved per call)."""
        return (*sorted(self._testers), "provider_plugin")

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: a semaphore must not be shared across loops (tests run several apps).
        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._semaphores:
            self._semaphores[loop_id] = asyncio.Semaphore(self._max_concurrent)
        return self._semaphores[loop_id]

    async def test(self, answers: Mapping[str, Any], *, providers: ProviderLookup | None = None) -> ConnectionDiagnosis:
        """Test the connection described by a signal-source or broker form's ``answers``."""
        kind = str(answers.get("kind", ""))
        config: Mapping[str, Any] = answers
        tester: ConnectionTester | None
        if kind == "provider_plugin":
            plugin_id = str(answers.get("plugin_id", ""))
            tester = providers(plugin_id) if providers is not None else None
            if tester is None:
                return diagnosis(
                    ConnectionStatus.ERROR,
                    f"provider plugin {plugin_id!r} is not installed and active for you",
                    hint="Install and activate the provider plugin first (Marketplace), then test again.",
                )
            config = {str(k): str(v) for k, v in dict(answers.get("config") or {}).items()}
        else:
            tester = self._testers.get(kind)
            if tester is None:
                return diagnosis(ConnectionStatus.ERROR, f"no connection tester for kind {kind!r}")
        async with self._semaphore():
            try:
                async with asyncio.timeout(MAX_TIMEOUT_S + _MARGIN_S):
                    result = await _call(tester, config)
            except TimeoutError:
                return diagnosis(ConnectionStatus.TIMEOUT, f"the {kind} test did not finish in time")
            except Exception as exc:  # a plugin or tester bug must become a diagnosis, not a 500
                return diagnosis(ConnectionStatus.ERROR, f"{kind} tester failed: {type(exc).__name__}: {exc}")
        if not isinstance(result, ConnectionDiagnosis):
            return diagnosis(ConnectionStatus.ERROR, f"the {kind} tester returned {type(result).__name__}")
        return result


async def _call(tester: ConnectionTester, config: Mapping[str, Any]) -> Any:
    method = tester.test_connection
    if inspect.iscoroutinefunction(method):
        return await method(config)
    # Sync providers (the plugin sandbox) block on a worker process: run them off the event loop.
    result = await asyncio.to_thread(method, dict(config))
    if inspect.isawaitable(result):
        return await result
    return result


class PaperTradeResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the paper test trade did: one position opened and closed at the given price."""

    order_id: str
    position_id: str
    symbol: str
    side: str
    lots: str
    open_price: str
    close_price: str
    status: str


def paper_test_trade(answers: Mapping[str, Any], *, account: str) -> PaperTradeResult:
    """Open and close one position on a fresh paper broker; returns what happened (Decimals as strings)."""
    symbol = str(answers["symbol"])
    price = Decimal(str(answers["price"]))
    broker = PaperBroker(prices={symbol: price})
    ident = uuid.uuid4().hex
    order = broker.place_order(
        account,
        OrderRequest(
            client_order_id=f"onboarding-open-{ident}",
            order_id=f"onboarding-order-{ident}",
            position_id=f"onboarding-position-{ident}",
            symbol=symbol,
            side=answers["side"],
            volume=Decimal(str(answers["lots"])),
        ),
    )
    position_id = order.position_id or f"onboarding-position-{ident}"
    opened = broker.position(account, position_id)
    closed = broker.close_position(account, position_id, client_order_id=f"onboarding-close-{ident}")
    return PaperTradeResult(
        order_id=order.order_id,
        position_id=position_id,
        symbol=symbol,
        side=str(answers["side"]),
        lots=str(order.volume),
        open_price=str(opened.open_price if opened else price),
        close_price=str(closed.close_price),
        status=closed.status,
    )
