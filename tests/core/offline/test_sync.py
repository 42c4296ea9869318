"""The device-side sync engine: ordering, retries, local decisions, reports, rebase, bounded memory."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from signalos_core.offline import (
    AckPayload,
    Action,
    ActionOutcome,
    Backoff,
    InMemoryServerStore,
    LocalTransport,
    Outbox,
    PaperBroker,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    ServerState,
    SimpleLimits,
    SyncEngine,
    SyncServer,
    position_id_for,
)
from tests.core.offline.conftest import World

D = Decimal


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    rng = random.Random(7)  # noqa: S311 - jitter test, not cryptography
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [backoff.delay(attempts, rng) for _ in range(200)]
        assert min(delays) >= 0.0
        assert max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8, "full jitter spans the whole window"


def test_batch_size_is_bounded(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as outbox, pytest.raises(ValueError, match="batch_size"):
        SyncEngine(outbox, LocalTransport(SyncServer(InMemoryServerStore(), PaperBroker(), SimpleLimits()), "u"),
                   batch_size=5000)  # fmt: skip


def test_offline_then_online_pushes_in_seq_order_in_batches(world: World) -> None:
    client, _, transport = world.device("phone")
    engine = SyncEngine(client.outbox, transport, batch_size=4, clock=world.clock)
    for i in range(10):
        client.acknowledge(f"n{i}")
    transport.down = True
    summary = engine.sync_once()
    assert summary.transport_error is not None
    assert summary.transport_error.startswith("offline")
    assert not summary.in_sync
    assert engine.consecutive_failures == 1
    transport.down = False
    world.clock.advance(hours=1)  # past any backoff
    engine._timer = lambda: time.time() + 3600
    summary = engine.sync_once()
    assert summary.in_sync
    assert engine.consecutive_failures == 0
    assert [len(p.actions) for p in transport.pushes] == [4, 4, 2]
    seqs = [a.action.seq for p in transport.pushes for a in p.actions]
    assert seqs == sorted(seqs) == list(range(1, 11))


def test_retry_waits_for_its_backoff(world: World) -> None:
    client, _, transport = world.device("phone")
    now = [1000.0]
    engine = SyncEngine(client.outbox, transport, backoff=Backoff(base=10, cap=10), timer=lambda: now[0],
                        rng=random.Random(1), clock=world.clock)  # fmt: skip  # noqa: S311 - deterministic jitter
    client.open("GBPUSD", "buy", D("1"), ref_price=D("1.3"))  # no price yet: retryable
    assert engine.sync_once().retrying == 1
    world.broker.set_price("GBPUSD", D("1.3"))
    assert engine.sync_once().pushed == 0, "not due yet"
    now[0] += 10.01
    assert engine.sync_once().applied == 1


def test_never_sent_actions_expire_locally_and_dependents_follow(world: World) -> None:
    client, engine, transport = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), ttl=timedelta(seconds=30))
    closing = client.close(position_id_for(opened.action_id), ttl=timedelta(hours=2))
    transport.down = True
    world.clock.advance(minutes=1)
    summary = engine.sync_once()
    assert summary.decided_locally == 2, "the dependent follows in the same pass"
    report = client.report()
    assert [(e.action.action_id, e.code, e.facts["decided_by"]) for e in report] == [
        (opened.action_id, "expired:ttl", "device"),
        (closing.action_id, "rejected:dependency_rejected", "device"),
    ]
    assert transport.pushes == []


def test_possibly_delivered_actions_are_never_expired_locally(world: World) -> None:
    client, engine, transport = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), ttl=timedelta(seconds=30))
    transport.lose_responses = True
    engine.sync_once()  # applied on the server, answer lost
    world.clock.advance(minutes=5)
    transport.lose_responses = False
    summary = engine.sync_once()
    assert summary.decided_locally == 0
    record = client.outbox.get(opened.action_id)
    assert record is not None
    assert record.outcome is not None
    assert record.outcome.effective.code == "applied", "the server's outcome, not a local guess"
    assert client.report() == []


class _Broken:
    """A transport that answers wrongly, to check the engine treats protocol violations as transport errors."""

    def __init__(self, inner: LocalTransport, mode: str) -> None:
        self.inner, self.mode = inner, mode

    def push(self, request: PushRequest) -> PushResponse:
        if self.mode == "network":
            raise ConnectionResetError("reset by peer")
        response = self.inner.push(request)
        return PushResponse(device_id=response.device_id, server_time=response.server_time,
                            results=response.results[:-1] if self.mode == "short" else response.results)  # fmt: skip

    def pull(self, request: PullRequest) -> PullResponse:
        return self.inner.pull(request)


@pytest.mark.parametrize(("mode", "cause"), [("short", "protocol"), ("network", "network")])
def test_bad_responses_and_bare_network_errors_keep_actions_pending(world: World, mode: str, cause: str) -> None:
    client, _, _ = world.device("phone")
    engine = SyncEngine(client.outbox, _Broken(LocalTransport(world.server, world.user), mode), clock=world.clock)
    action = client.acknowledge("x")
    summary = engine.sync_once()
    assert summary.transport_error is not None
    assert summary.transport_error.startswith(cause)
    record = client.outbox.get(action.action_id)
    assert record is not None
    assert (record.state, record.last_error, record.maybe_delivered) == ("pending", f"transport:{cause}", True)


def test_a_pull_carrying_a_retryable_outcome_is_a_protocol_error(world: World) -> None:
    client, _, _ = world.device("phone")
    action = client.acknowledge("x")

    class Liar(_Broken):
        def pull(self, request: PullRequest) -> PullResponse:
            from signalos_core.offline import ActionOutcome

            bogus = ActionOutcome(action_id=action.action_id, seq=1, code="retryable:x")
            real = self.inner.pull(request)
            return PullResponse(device_id=real.device_id, cursor=real.cursor, more=False, outcomes=[bogus],
                                state=real.state, server_time=real.server_time)  # fmt: skip

    engine = SyncEngine(client.outbox, Liar(LocalTransport(world.server, world.user), "ok"), clock=world.clock)
    assert (engine.sync_once().transport_error or "").startswith("protocol")


def test_sync_loop_backs_off_then_stops_when_in_sync(world: World) -> None:
    client, engine, transport = world.device("phone")
    client.acknowledge("x")
    transport.down = True
    sleeps: list[float] = []
    summary = engine.sync(max_rounds=3, sleep=sleeps.append)
    assert len(sleeps) == 3
    assert not summary.in_sync
    transport.down = False
    assert engine.sync(max_rounds=3, sleep=sleeps.append).in_sync
    assert len(sleeps) == 3


def test_rebase_shows_pending_actions_over_the_new_state(world: World) -> None:
    phone, phone_sync, _ = world.device("phone")
    laptop, laptop_sync, _ = world.device("laptop")
    opened = phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), stop_loss=D("1.09"))
    phone_sync.sync_once()
    laptop_sync.sync_once()
    position = position_id_for(opened.action_id)
    laptop.modify(position, stop_loss=D("1.05"), take_profit=None)
    laptop.set_settings({"theme": "dark"})
    phone.modify(position, stop_loss=D("1.08"), take_profit=None)
    phone_sync.sync_once()
    laptop.outbox.save_pull(laptop.outbox.cursor, world.server.state(world.user))  # a pull without a push
    view = laptop.view()
    assert view.settings["theme"] == "dark"
    assert [(p.kind, p.status) for p in view.pending] == [("modify", "pending"), ("settings", "pending")]
    assert view.pending[0].note == "position is at version 2, you acted on 1"
    world.broker.set_price("EURUSD", D("1.07"))  # SL hit: the position is gone from the open set
    laptop.close(position, expected_version=2)
    laptop.outbox.save_pull(laptop.outbox.cursor, world.server.state(world.user))
    assert "not open on the server" in laptop.view().pending[-1].note


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)  # pragma: no cover - Linux always reports VmRSS/VmHWM


@pytest.mark.slow
def test_100k_queued_actions_sync_with_bounded_memory(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    outbox = Outbox(tmp_path / "big.db", device_id="phone", clock=lambda: t0)
    n = 100_000
    for start in range(0, n, 5000):
        outbox.enqueue_many("ack", [
            lambda seq, i=i: Action(action_id=uuid.UUID(int=i + 1), device_id="phone", seq=seq, kind="ack",
                                    created_at_device=t0, expires_at=t0 + timedelta(days=1),
                                    payload=AckPayload(subject=f"n{i}"))
            for i in range(start, start + 5000)
        ])  # fmt: skip
    server = _Acknowledger(t0)
    engine = SyncEngine(outbox, server, batch_size=1000, clock=lambda: t0)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
    except OSError:  # pragma: no cover - kernels without clear_refs: VmHWM is then the process lifetime peak
        pytest.skip("cannot reset the peak RSS mark here")
    before = _status_kib("VmRSS")
    summary = engine.sync_once()
    growth_mib = (_status_kib("VmHWM") - before) / 1024
    assert (summary.pushed, summary.applied, summary.unfinished) == (n, n, 0)
    assert (server.received, server.last_seq) == (n, n)
    assert outbox.counts()["terminal"] == n
    # Holding the backlog in memory would take well over 100 MiB; paging keeps the peak to a few pages.
    assert growth_mib < 32, f"peak RSS grew by {growth_mib:.1f} MiB"
    outbox.close()


class _Acknowledger:
    """A fast in-process server for the memory test: checks order and uniqueness in O(1) memory, applies all.

    (The real server logic is exercised by the other tests and measured by benchmarks/bench_offline.py.)
    """

    def __init__(self, now: datetime) -> None:
        self.now, self.received, self.last_seq = now, 0, 0

    def push(self, request: PushRequest) -> PushResponse:
        results = []
        for item in request.actions:
            assert item.action.seq > self.last_seq, "pushed out of order or twice"
            self.last_seq = item.action.seq
            self.received += 1
            results.append(ActionOutcome(action_id=item.action.action_id, seq=item.action.seq, code="applied",
                                         server_seq=self.received, decided_at=self.now))  # fmt: skip
        return PushResponse(device_id=request.device_id, server_time=self.now, results=results)

    def pull(self, request: PullRequest) -> PullResponse:
        return PullResponse(device_id=request.device_id, cursor=self.received, more=False, outcomes=[],
                            state=ServerState(), server_time=self.now)  # fmt: skip
