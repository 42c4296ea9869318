"""One bad action never blocks the queue: per-action validation on the server, bisection of refused batches on
the device, ``client_upgrade_required`` for action types the server does not know, and device-fork detection."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from signalos_core.offline import (
    Backoff,
    BatchRefusedError,
    DeviceForkError,
    LocalTransport,
    OfflineClient,
    Outbox,
    Outcome,
    PullRequest,
    PullResponse,
    PushedAction,
    PushRequest,
    PushResponse,
    SyncEngine,
    SyncTransportError,
)
from tests.core.offline.conftest import World

D = Decimal


def _body(world: World, device: str, mutate: dict[int, Any]) -> tuple[bytes, list[str], bytes]:
    """A push body of three opens recorded on ``device`` with ``mutate[i](item)`` applied to item i; also the
    ids and the unmodified body."""
    client, _, _ = world.device(device)
    actions = [client.open("EURUSD", "buy", D("1"), ref_price=D("1.1")) for _ in range(3)]
    client.outbox.close()
    doc: dict[str, Any] = {
        "device_id": device,
        "sent_at_device": world.clock().isoformat(),
        "actions": [{"action": msgspec.to_builtins(a), "age_ms": 0} for a in actions],
    }
    clean = json.dumps(doc).encode()
    for index, edit in mutate.items():
        edit(doc["actions"][index])
    return json.dumps(doc).encode(), [str(a.action_id) for a in actions], clean


def _set(path: str, value: object) -> Any:
    def edit(item: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = item
        for key in parents:
            target = target[key]
        target[leaf] = value

    return edit


def test_an_invalid_action_is_rejected_naming_the_field_and_the_rest_applies(world: World) -> None:
    body, ids, clean = _body(world, "phone", {1: _set("action.payload.volume", "-1")})
    response = world.server.push_body(world.user, body)
    assert [r.code for r in response.results] == ["applied", "rejected:invalid", "applied"]
    bad = response.results[1]
    assert str(bad.action_id) == ids[1]
    assert bad.facts == {"field": "action.payload"}
    assert "volume must be a finite decimal > 0" in bad.message
    # Recorded like any terminal outcome: the device's cursor advances past it, and a resend is a duplicate.
    pulled = world.server.pull(world.user, PullRequest(device_id="phone"))
    assert [str(o.action_id) for o in pulled.outcomes if o.code == "rejected:invalid"] == [ids[1]]
    resent = body.replace(b'"age_ms": 0', b'"age_ms": 1500')  # a later resend reports a larger age
    assert resent != body
    again = world.server.push_body(world.user, resent).results
    assert [(r.code, r.original_code) for r in again][1] == ("duplicate", "rejected:invalid")
    # The same id resent with other (now valid) content is refused and changes nothing.
    reused = world.server.push_body(world.user, clean).results
    assert [r.code for r in reused] == ["duplicate", "rejected:invalid", "duplicate"]
    assert reused[1].message == "action id reused with different content"
    assert len(world.broker.snapshot(world.user)[0]) == 2


def test_a_type_the_server_does_not_know_needs_an_upgrade(world: World) -> None:
    body, _, _ = _body(world, "tablet", {0: _set("action.payload.type", "open_v2"), 2: _set("action.kind", "bracket")})
    results = world.server.push_body(world.user, body).results
    assert [r.code for r in results] == [
        "rejected:client_upgrade_required", "applied", "rejected:client_upgrade_required",
    ]  # fmt: skip
    assert "'open_v2'" in results[0].message
    assert "'bracket'" in results[2].message
    upgrade = Outcome.parse("rejected:client_upgrade_required")
    assert (upgrade.terminal, upgrade.succeeded, upgrade.category) == (True, False, "rejected")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        ({1: _set("action.action_id", "not-a-uuid")}, "actions[1]"),
        ({1: _set("action.seq", 0)}, "actions[1]"),
        ({2: _set("action.device_id", "someone-else")}, "actions[2].device_id is not the pushing device"),
        ({2: _set("action.seq", 1)}, "actions[2].seq is not ascending"),
    ],
)
def test_what_cannot_be_answered_per_action_refuses_the_batch(
    world: World, mutate: dict[int, Any], expected: str
) -> None:
    body, _, _ = _body(world, "laptop", mutate)
    with pytest.raises(msgspec.ValidationError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        world.server.push_body(world.user, body)
    assert world.broker.snapshot(world.user)[0] == [], "nothing of a refused batch is applied"


def test_the_local_transport_maps_a_refused_batch_like_http_400(world: World) -> None:
    client, _, _ = world.device("watch")
    action = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    client.outbox.close()
    # Struct construction does not re-check field types: this encodes to an action id the server cannot read.
    broken = msgspec.structs.replace(action, action_id="not-a-uuid")
    request = PushRequest(device_id="watch", sent_at_device=world.clock(), actions=[PushedAction(broken, 0)])
    with pytest.raises(BatchRefusedError) as info:
        LocalTransport(world.server, world.user).push(request)
    assert (info.value.status, info.value.code, info.value.ambiguous) == (400, "validation_error", False)
    assert "actions[0]" in info.value.detail


class StrictServer:
    """A server (like an older release) that refuses a whole batch with 400 when any action in it is invalid
    by its rules -- here: any open of the symbol it does not list. Real server logic behind it."""

    def __init__(self, inner: LocalTransport, refused_symbol: str) -> None:
        self.inner = inner
        self.refused_symbol = refused_symbol
        self.pushes = 0

    def push(self, request: PushRequest) -> PushResponse:
        self.pushes += 1
        for index, item in enumerate(request.actions):
            if getattr(item.action.payload, "symbol", None) == self.refused_symbol:
                detail = f"actions[{index}].action.payload.symbol: {self.refused_symbol} is not tradable"
                raise BatchRefusedError(f"HTTP 400: {detail}", status=400, code="validation_error", detail=detail)
        return self.inner.push(request)

    def pull(self, request: PullRequest) -> PullResponse:
        return self.inner.pull(request)


def test_the_device_bisects_a_refused_batch_and_reports_the_offender(world: World) -> None:
    client, _, _ = world.device("phone")
    strict = StrictServer(LocalTransport(world.server, world.user), "BADSYM")
    engine = SyncEngine(client.outbox, strict, backoff=Backoff(0, 0), clock=world.clock)
    good = [client.open("EURUSD", "buy", D("1"), ref_price=D("1.1")) for _ in range(15)]
    poisoned = client.open("BADSYM", "buy", D("1"), ref_price=D("1.1"))
    later = [client.open("EURUSD", "sell", D("1"), ref_price=D("1.1")) for _ in range(16)]
    summary = engine.sync_once()
    assert summary.in_sync, summary
    assert (summary.applied, summary.not_applied, summary.refused) == (31, 1, 1)
    [entry] = client.report()
    assert entry.action.action_id == poisoned.action_id
    assert entry.code == "rejected:invalid"
    assert entry.facts["problem_code"] == "validation_error"
    assert entry.facts["http_status"] == "400"
    assert "BADSYM is not tradable" in entry.facts["problem_detail"]
    assert len(world.broker.snapshot(world.user)[0]) == len(good) + len(later)
    assert strict.pushes <= 2 * 6 + 1, "bisection costs O(log n) pushes per offender"
    # Terminal on the device: the next round sends nothing more.
    assert engine.sync_once().pushed == 0
    client.outbox.close()


def test_two_bad_actions_in_one_batch_are_both_isolated(world: World) -> None:
    client, _, _ = world.device("phone")
    strict = StrictServer(LocalTransport(world.server, world.user), "BADSYM")
    engine = SyncEngine(client.outbox, strict, backoff=Backoff(0, 0), clock=world.clock)
    kinds = ["BADSYM" if i in (0, 6) else "EURUSD" for i in range(7)]
    for symbol in kinds:
        client.open(symbol, "buy", D("1"), ref_price=D("1.1"))
    summary = engine.sync_once()
    assert (summary.applied, summary.refused, summary.in_sync) == (5, 2, True)
    assert sorted(e.action.seq for e in client.report()) == [1, 7]
    client.outbox.close()


def test_a_second_installation_with_the_same_device_id_is_a_fork(world: World) -> None:
    first, first_engine, _ = world.device("phone")
    first.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    assert first_engine.sync_once().in_sync
    # A restored backup / cloned app: another outbox file, same device id, counting seq from 1 again.
    clone = OfflineClient(Outbox(world.tmp / "clone.db", device_id="phone", clock=world.clock))
    engine = SyncEngine(clone.outbox, LocalTransport(world.server, world.user), backoff=Backoff(0, 0),
                        clock=world.clock)  # fmt: skip
    clone.open("EURUSD", "sell", D("2"), ref_price=D("1.1"))
    clone.open("EURUSD", "sell", D("3"), ref_price=D("1.1"))
    summary = engine.sync(max_rounds=5, sleep=lambda _: None)
    assert summary.device_forked
    assert not summary.in_sync
    assert summary.transport_error is not None
    assert summary.transport_error.startswith("device_fork")
    assert clone.outbox.counts()["pending"] == 2, "nothing is rejected or dropped: the user re-registers"
    assert len(world.broker.snapshot(world.user)[0]) == 1, "nothing of the forked batch was applied"
    # The original installation keeps syncing normally.
    first.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    assert first_engine.sync_once().in_sync
    pending = [PushedAction(action=r.action, age_ms=0) for r in clone.outbox.unfinished()]
    with pytest.raises(DeviceForkError) as info:
        LocalTransport(world.server, world.user).push(
            PushRequest(device_id="phone", sent_at_device=world.clock(), actions=pending)
        )
    assert (info.value.device_id, info.value.seq, info.value.ambiguous) == ("phone", 1, False)
    assert isinstance(info.value, SyncTransportError)
    first.outbox.close()
    clone.outbox.close()


def test_a_resend_of_the_same_action_at_the_same_seq_is_not_a_fork(world: World) -> None:
    client, engine, transport = world.device("phone")
    client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    transport.lose_responses = True
    assert engine.sync_once().transport_error is not None
    transport.lose_responses = False
    summary = engine.sync_once()
    assert summary.in_sync
    assert not summary.device_forked
    client.outbox.close()
