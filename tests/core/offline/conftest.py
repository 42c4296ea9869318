"""Fixtures for the offline tests: real outbox files in tmp_path, a real server, paper broker and transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from signalos_core.offline import (
    Backoff,
    InMemoryServerStore,
    LocalTransport,
    OfflineClient,
    Outbox,
    PaperBroker,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    SimpleLimits,
    SQLiteServerStore,
    SyncEngine,
    SyncServer,
    SyncTransportError,
)


class Clock:
    """A controllable aware clock (server and devices share real time semantics, tests move it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FlakyTransport:
    """Wraps a transport; ``down`` refuses before sending, ``lose_responses`` applies then drops the answer."""

    def __init__(self, inner: LocalTransport) -> None:
        self.inner = inner
        self.down = False
        self.lose_responses = False
        self.pushes: list[PushRequest] = []

    def push(self, request: PushRequest) -> PushResponse:
        if self.down:
            raise SyncTransportError("connection refused", ambiguous=False, cause="offline")
        self.pushes.append(request)
        response = self.inner.push(request)
        if self.lose_responses:
            raise SyncTransportError("timed out waiting for the response", ambiguous=True, cause="timeout")
        return response

    def pull(self, request: PullRequest) -> PullResponse:
        if self.down:
            raise SyncTransportError("connection refused", ambiguous=False, cause="offline")
        return self.inner.pull(request)


@dataclass
class World:
    """One account on one server with a paper broker."""

    clock: Clock
    store: InMemoryServerStore | SQLiteServerStore
    broker: PaperBroker
    limits: SimpleLimits
    server: SyncServer
    tmp: Path
    user: str = "alice"

    def device(
        self, name: str, *, skew: timedelta = timedelta(0), server: SyncServer | None = None
    ) -> tuple[OfflineClient, SyncEngine, FlakyTransport]:
        """A device whose wall clock is ``skew`` off the server's; its monotonic clock follows real (test) time."""

        def device_clock() -> datetime:
            return self.clock() + skew

        outbox = Outbox(
            self.tmp / f"{name}.db", device_id=name, clock=device_clock, monotonic=lambda: self.clock().timestamp()
        )
        client = OfflineClient(outbox, advisor=self.limits, clock=device_clock)
        transport = FlakyTransport(LocalTransport(server or self.server, self.user))
        engine = SyncEngine(outbox, transport, backoff=Backoff(base=0.0, cap=0.0), clock=device_clock)
        return client, engine, transport


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[World]:
    """The same scenarios run against both server stores."""
    store: InMemoryServerStore | SQLiteServerStore
    store = InMemoryServerStore() if request.param == "memory" else SQLiteServerStore(tmp_path / "server.db")
    broker = PaperBroker({"EURUSD": Decimal("1.1000"), "XAUUSD": Decimal("2000.0")})
    limits = SimpleLimits(max_volume=Decimal("5"))
    server = SyncServer(store, broker, limits, clock=clock)
    yield World(clock, store, broker, limits, server, tmp_path)
    if isinstance(store, SQLiteServerStore):
        store.close()


@pytest.fixture
def make_outbox(tmp_path: Path) -> Iterator[Callable[..., Outbox]]:
    opened: list[Outbox] = []

    def make(name: str = "outbox.db", **kwargs: object) -> Outbox:
        outbox = Outbox(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        outbox.close()
