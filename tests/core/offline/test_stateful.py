"""Hypothesis stateful proof: two devices, one server, random outages, replays and server-side changes.

Properties checked after every step and at the end (when everything is back online and synced):
no acknowledged action is lost, none executes twice, every non-applied action is in its device's report with
its reason, and both devices converge to the server's state.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from signalos_core.offline import (
    Action,
    Backoff,
    InMemoryServerStore,
    LocalTransport,
    OfflineClient,
    Outbox,
    PaperBroker,
    PushRequest,
    SimpleLimits,
    SyncEngine,
    SyncServer,
    order_id_for,
    position_id_for,
)
from tests.core.offline.conftest import Clock, FlakyTransport

D = Decimal
USER = "alice"
DEVICES = ("phone", "laptop")
devices = st.sampled_from(DEVICES)


class TwoDevices(RuleBasedStateMachine):
    """The model: what each device was told it recorded (``acked``) and what was replayed to the server."""

    @initialize()
    def setup(self) -> None:
        # tmpfs where available: this test is about sync logic, and fsyncs on a shared disk would dominate it.
        shm = Path("/dev/shm")  # noqa: S108 - a private TemporaryDirectory inside tmpfs, removed in teardown
        self.tmp = tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None)
        self.clock = Clock()
        self.store = InMemoryServerStore()
        self.broker = PaperBroker({"EURUSD": D("1.1000")})
        self.limits = SimpleLimits(max_volume=D("5"))
        self.server = SyncServer(self.store, self.broker, self.limits, clock=self.clock)
        self.clients: dict[str, OfflineClient] = {}
        self.engines: dict[str, SyncEngine] = {}
        self.transports: dict[str, FlakyTransport] = {}
        self.acked: dict[uuid.UUID, tuple[str, Action]] = {}
        self.created: dict[str, int] = {}
        for name in DEVICES:
            outbox = Outbox(Path(self.tmp.name) / f"{name}.db", device_id=name, clock=self.clock,
                            monotonic=lambda: self.clock().timestamp())  # fmt: skip
            self.clients[name] = OfflineClient(outbox, advisor=self.limits, clock=self.clock)
            self.transports[name] = FlakyTransport(LocalTransport(self.server, USER))
            self.engines[name] = SyncEngine(outbox, self.transports[name], backoff=Backoff(0, 0), clock=self.clock)

    def teardown(self) -> None:
        if not hasattr(self, "tmp"):
            return
        try:
            self._final_check()
        finally:
            for client in self.clients.values():
                client.outbox.close()
            self.tmp.cleanup()

    def _ack(self, device: str, action: Action) -> None:
        assert action.action_id not in self.acked
        self.acked[action.action_id] = (device, action)
        if action.kind == "open":
            # Candidates are listed in creation order: ids are random UUIDs, and sorting by them would make
            # hypothesis's choices (an index into the list) mean different targets on replay.
            self.created[position_id_for(action.action_id)] = self.created[order_id_for(action.action_id)] = len(
                self.acked
            )

    def _price(self) -> Decimal:
        price = self.broker.quote(USER, "EURUSD") if self.broker.available else None
        return price or D("1.1000")

    # ------------------------------------------------------------------ user actions (offline-capable)
    @rule(device=devices, volume=st.sampled_from(["1", "2", "6"]), side=st.sampled_from(["buy", "sell"]),
          with_sl=st.booleans(), signal=st.sampled_from([None, "sig-1", "sig-2"]),
          stale=st.sampled_from(["0", "0.0005", "0.0030"]))  # fmt: skip
    def open_market(  # noqa: PLR0917 - hypothesis passes rule arguments by keyword; the count is the model
        self, device: str, volume: str, side: str, with_sl: bool, signal: str | None, stale: str
    ) -> None:
        ref = self._price() + D(stale)  # the price the user saw may be stale
        sl = (ref - D("0.0050") if side == "buy" else ref + D("0.0050")) if with_sl else None
        action = self.clients[device].open(
            "EURUSD", side, D(volume), ref_price=ref, max_deviation=D("0.0010"), stop_loss=sl,  # type: ignore[arg-type]
            signal_id=signal, ttl=timedelta(minutes=2),
        )  # fmt: skip
        self._ack(device, action)

    @rule(device=devices, offset=st.sampled_from(["-0.0020", "0.0020"]))
    def open_limit(self, device: str, offset: str) -> None:
        side = "buy" if offset.startswith("-") else "sell"
        limit = self._price() + D(offset)
        action = self.clients[device].open("EURUSD", side, D("1"), order_type="limit", limit_price=limit)  # type: ignore[arg-type]
        self._ack(device, action)

    def _positions(self, device: str) -> list[str]:
        client = self.clients[device]
        known = [p.position_id for p in client.outbox.server_state().positions]
        own = [
            position_id_for(r.action.action_id) for r in client.outbox.unfinished(limit=200) if r.action.kind == "open"
        ]
        return sorted(set(known + own), key=self.created.__getitem__)

    def _orders(self, device: str) -> list[str]:
        client = self.clients[device]
        known = [o.order_id for o in client.outbox.server_state().orders]
        own = [order_id_for(r.action.action_id) for r in client.outbox.unfinished(limit=200)
               if r.action.kind == "open" and getattr(r.action.payload, "order_type", "") == "limit"]  # fmt: skip
        return sorted(set(known + own), key=self.created.__getitem__)

    @rule(device=devices, data=st.data(), tighten=st.booleans())
    def modify(self, device: str, data: st.DataObject, tighten: bool) -> None:
        positions = self._positions(device)
        if positions:
            target = data.draw(st.sampled_from(positions))
            tp = self._price() + (D("0.0100") if tighten else D("-0.0100"))
            self._ack(device, self.clients[device].modify(target, stop_loss=None, take_profit=tp))

    @rule(device=devices, data=st.data())
    def close(self, device: str, data: st.DataObject) -> None:
        positions = self._positions(device)
        if positions:
            self._ack(device, self.clients[device].close(data.draw(st.sampled_from(positions))))

    @rule(device=devices, data=st.data())
    def cancel(self, device: str, data: st.DataObject) -> None:
        orders = self._orders(device)
        if orders:
            self._ack(device, self.clients[device].cancel(data.draw(st.sampled_from(orders))))

    @rule(device=devices, field=st.sampled_from(["theme", "risk", "paused"]), value=st.booleans())
    def change_setting(self, device: str, field: str, value: bool) -> None:
        self._ack(device, self.clients[device].set_settings({field: value}))

    @rule(device=devices, subject=st.sampled_from(["sig-1", "sig-2", "news"]))
    def acknowledge(self, device: str, subject: str) -> None:
        self._ack(device, self.clients[device].acknowledge(subject))

    # ------------------------------------------------------------------ network and time
    @rule(device=devices, down=st.booleans())
    def connectivity(self, device: str, down: bool) -> None:
        self.transports[device].down = down

    @rule(device=devices, lose=st.booleans())
    def flaky_responses(self, device: str, lose: bool) -> None:
        self.transports[device].lose_responses = lose

    @rule(device=devices)
    def sync(self, device: str) -> None:
        self.engines[device].sync_once()

    @rule(device=devices, data=st.data())
    def replay_an_old_push(self, device: str, data: st.DataObject) -> None:
        pushes = self.transports[device].pushes
        if pushes:
            request: PushRequest = data.draw(st.sampled_from(pushes))
            self.server.push(USER, request)  # a late duplicate / reordered delivery

    @rule(seconds=st.sampled_from([1, 20, 90, 400]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    # ------------------------------------------------------------------ server-side changes
    @rule(move=st.sampled_from(["-0.0060", "-0.0008", "0.0008", "0.0060"]))
    def price_moves(self, move: str) -> None:
        self.broker.set_price("EURUSD", self._price() + D(move))  # may hit SL/TP and fill limits

    @rule(signal=st.sampled_from(["sig-1", "sig-2"]))
    def signal_cancelled(self, signal: str) -> None:
        self.store.cancel_signal(USER, signal)

    @rule(limit=st.sampled_from(["1", "5"]))
    def profile_changes(self, limit: str) -> None:
        self.limits.max_volume = D(limit)

    @rule(available=st.booleans())
    def provider_outage(self, available: bool) -> None:
        self.broker.available = available

    # ------------------------------------------------------------------ properties
    @invariant()
    def nothing_executes_twice(self) -> None:
        if not hasattr(self, "broker"):
            return
        client_ids = [f.client_order_id for f in self.broker.fills]
        assert len(client_ids) == len(set(client_ids)), "an order or close executed twice"

    @invariant()
    def reports_match_outcomes(self) -> None:
        for client in getattr(self, "clients", {}).values():
            reported = {e.action.action_id: e for e in client.report()}
            for entry in reported.values():
                assert entry.code != "applied"
                assert entry.message
            for record in client.outbox.iter_unfinished():
                assert record.action.action_id not in reported

    def _final_check(self) -> None:
        self.broker.available = True
        for transport in self.transports.values():
            transport.down = transport.lose_responses = False
        for _ in range(3):  # a dependency may need its dependent's device to sync after its own
            for name in DEVICES:
                self.engines[name].sync(max_rounds=4, sleep=lambda _s: None)
        state = self.server.state(USER)
        for name in DEVICES:
            final = self.engines[name].sync_once()
            assert final.in_sync, f"{name} did not get back in sync: {final}"
            outbox = self.clients[name].outbox
            assert outbox.server_state() == state, f"{name} did not converge"
        reported = {e.action.action_id: e for c in self.clients.values() for e in c.report()}
        for action_id, (device, action) in self.acked.items():
            record = self.clients[device].outbox.get(action_id)
            assert record is not None, "an acknowledged action was lost"
            assert record.state == "terminal"
            assert record.outcome is not None
            code = record.outcome.effective.code
            server_record = self.store.outcome(USER, action_id)
            if server_record is None:
                assert record.outcome.facts.get("decided_by") == "device", f"{code} came from nowhere"
            else:
                assert server_record[0].code == code, "device and server disagree on the outcome"
            if code == "applied":
                assert action_id not in reported
            else:
                assert reported[action_id].code == code, "a non-applied action is missing from the report"
            if action.kind == "open" and code == "applied":
                assert self.broker.find_order(USER, f"so-{action_id.hex}") is not None


TwoDevices.TestCase.settings = settings(
    max_examples=int(os.environ.get("OFFLINE_STATEFUL_EXAMPLES", "120")), stateful_step_count=40, deadline=None
)
test_two_devices_converge = TwoDevices.TestCase
