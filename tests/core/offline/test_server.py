"""Conflict rules of the sync server, driven end to end through real outboxes and the local transport."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from signalos_core.offline import (
    AccountView,
    Action,
    ActionOutcome,
    AdvisoryDecision,
    InMemoryServerStore,
    PullRequest,
    PushedAction,
    PushRequest,
    ServerPolicy,
    SimpleLimits,
    SyncServer,
    client_order_id,
    order_id_for,
    position_id_for,
)
from tests.core.offline.conftest import World

D = Decimal


def _outcome(world: World, device: str, action_id: uuid.UUID) -> ActionOutcome:
    pulled = world.server.pull(world.user, PullRequest(device_id=device, limit=1000))
    return next(o for o in pulled.outcomes if o.action_id == action_id)


def test_market_open_fills_at_the_feed_and_modify_close_follow(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"), stop_loss=D("1.09"))
    position = position_id_for(opened.action_id)
    modified = client.modify(position, stop_loss=D("1.095"), take_profit=D("1.12"))
    closed = client.close(position)
    assert modified.depends_on == (opened.action_id,), "targets a position its own pending open creates"
    assert modified.expected_version == 1
    summary = engine.sync_once()
    assert (summary.pushed, summary.applied, summary.not_applied, summary.unfinished) == (3, 3, 0, 0)
    assert summary.in_sync
    facts = _outcome(world, "phone", closed.action_id).facts
    assert (facts["status"], facts["close_reason"], facts["version"]) == ("closed", "client", "3")
    assert [f.kind for f in world.broker.fills] == ["open", "close"]
    assert world.broker.fills[0].client_order_id == client_order_id(opened.action_id)


def test_duplicate_push_returns_the_original_outcome_and_executes_once(world: World) -> None:
    client, engine, transport = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"))
    transport.lose_responses = True
    assert engine.sync_once().transport_error is not None
    record = client.outbox.get(opened.action_id)
    assert record is not None
    assert (record.state, record.maybe_delivered, record.attempts) == ("pending", True, 1)
    transport.lose_responses = False
    engine.sync_once()
    assert transport.pushes[-1].actions[0].action.action_id == opened.action_id
    response = world.server.push(world.user, transport.pushes[-1])
    assert response.results[0].code == "duplicate"
    assert response.results[0].original_code == "applied"
    assert len(world.broker.fills) == 1, "the resend never opened a second position"
    assert client.report() == []


def test_same_id_with_different_content_is_refused_and_keeps_its_outcome(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"))
    engine.sync_once()
    forged = msgspec.structs.replace(opened, payload=msgspec.structs.replace(opened.payload, volume=D("3")))
    request = PushRequest(device_id="phone", sent_at_device=world.clock(), actions=[PushedAction(forged, 0)])
    assert world.server.push(world.user, request).results[0].code == "rejected:invalid"
    assert _outcome(world, "phone", opened.action_id).code == "applied"


def test_price_moved_beyond_deviation_is_rejected_with_the_current_price(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"), max_deviation=D("0.0010"))
    world.broker.set_price("EURUSD", D("1.1011"))
    engine.sync_once()
    [entry] = client.report()
    assert entry.action.action_id == opened.action_id
    assert entry.code == "rejected:price_moved"
    assert entry.facts == {"current_price": "1.1011", "ref_price": "1.1000", "max_deviation": "0.0010"}
    assert world.broker.fills == []


def test_deviation_equal_to_the_limit_is_allowed(world: World) -> None:
    client, engine, _ = world.device("phone")
    client.open("EURUSD", "sell", D("1"), ref_price=D("1.1000"), max_deviation=D("0.0010"))
    world.broker.set_price("EURUSD", D("1.0990"))
    assert engine.sync_once().applied == 1


def test_expiry_is_judged_by_age_not_by_device_clock(world: World) -> None:
    client, engine, _ = world.device("phone", skew=timedelta(days=-30))  # a month behind: only the age counts
    fresh = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), ttl=timedelta(minutes=5))
    stale = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), ttl=timedelta(minutes=5))
    world.clock.advance(minutes=4)
    assert engine.sync_once().applied == 2  # 4 minutes old: within the 5 minutes whatever the wall clock says
    assert _outcome(world, "phone", fresh.action_id).code == "applied"
    assert _outcome(world, "phone", stale.action_id).facts.get("clock_skew_ms") == str(-30 * 86_400_000)


def test_an_action_first_seen_long_ago_expires_even_if_the_device_reports_it_young(world: World) -> None:
    client, _, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), ttl=timedelta(minutes=1))
    world.broker.available = False
    request = PushRequest(device_id="phone", sent_at_device=world.clock(), actions=[PushedAction(opened, 0)])
    assert world.server.push(world.user, request).results[0].code == "retryable:provider_unavailable"
    world.broker.available = True
    world.clock.advance(minutes=5)
    result = world.server.push(world.user, request).results[0]
    assert result.code == "expired:ttl"
    assert result.facts["age_ms"] == "300000"
    assert "clock_skew_ms" in result.facts, "a device clock 5 minutes off is flagged"


def test_lifetime_is_capped_by_server_policy(world: World) -> None:
    server = SyncServer(world.store, world.broker, world.limits, clock=world.clock,
                        policy=ServerPolicy(max_ttl={**ServerPolicy().max_ttl, "open": timedelta(seconds=10)}))  # fmt: skip
    client, _, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), ttl=timedelta(hours=1))
    request = PushRequest(device_id="phone", sent_at_device=world.clock(), actions=[PushedAction(opened, 11_000)])
    result = server.push(world.user, request).results[0]
    assert (result.code, result.facts["lifetime_ms"]) == ("expired:ttl", "10000")


def test_compliance_current_at_apply_time_decides(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("3"), ref_price=D("1.1"))
    record = client.outbox.get(opened.action_id)
    assert record is not None
    assert record.advisory is not None
    assert record.advisory.allowed, "the cached profile allowed it on the device"
    world.limits.max_volume = D("2")  # the firm tightened the profile meanwhile
    engine.sync_once()
    [entry] = client.report()
    assert (entry.code, entry.facts["rule_id"]) == ("rejected:compliance:max_lot", "max_lot")


def test_a_pause_that_lands_first_blocks_later_opens_from_any_device(world: World) -> None:
    phone, phone_sync, _ = world.device("phone")
    laptop, laptop_sync, _ = world.device("laptop")
    opened = laptop.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    phone.set_settings({"paused": True})
    phone_sync.sync_once()
    laptop_sync.sync_once()
    [entry] = laptop.report()
    assert (entry.action.action_id, entry.code) == (opened.action_id, "rejected:compliance:paused")


def test_cancelled_signal_rejects_the_copy(world: World) -> None:
    client, engine, _ = world.device("phone")
    client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), signal_id="chan:42")
    world.store.cancel_signal(world.user, "chan:42")
    assert client.view().pending[0].note == ""
    engine.sync_once()
    assert client.report()[0].code == "rejected:signal_cancelled"
    assert client.outbox.server_state().cancelled_signals == ["chan:42"]


def test_close_of_a_position_closed_by_stop_loss_is_a_noop_never_an_opposite_order(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), stop_loss=D("1.09"))
    engine.sync_once()
    close = client.close(position_id_for(opened.action_id))
    world.broker.set_price("EURUSD", D("1.0890"))  # SL hit while the device was offline
    engine.sync_once()
    [entry] = client.report()
    assert entry.code == "noop:already_closed"
    assert entry.action.action_id == close.action_id
    assert (entry.facts["close_reason"], entry.facts["close_price"]) == ("stop_loss", "1.0890")
    assert [f.kind for f in world.broker.fills] == ["open", "close"], "no second (opposite) order"


def test_two_devices_on_one_target_first_applied_wins(world: World) -> None:
    phone, phone_sync, _ = world.device("phone")
    laptop, laptop_sync, _ = world.device("laptop")
    opened = phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    phone_sync.sync_once()
    laptop_sync.sync_once()
    position = position_id_for(opened.action_id)
    phone.modify(position, stop_loss=D("1.08"), take_profit=None)
    laptop.modify(position, stop_loss=D("1.05"), take_profit=None)
    laptop.close(position)
    phone_sync.sync_once()
    laptop_sync.sync_once()
    report = laptop.report()
    assert [e.code for e in report] == ["rejected:target_changed"]
    assert (report[0].facts["version"], report[0].facts["stop_loss"]) == ("2", "1.08")
    assert laptop.outbox.counts()["terminal"] == 2, "the laptop's close still applied (closes ignore SL edits)"


def test_cancel_after_fill_is_target_changed_and_cancel_of_working_order_applies(world: World) -> None:
    client, engine, _ = world.device("phone")
    resting = client.open("EURUSD", "buy", D("1"), order_type="limit", limit_price=D("1.0950"))
    filled = client.open("EURUSD", "buy", D("1"), order_type="limit", limit_price=D("1.0980"))
    engine.sync_once()
    assert {o.order_id for o in client.outbox.server_state().orders} == {
        order_id_for(resting.action_id),
        order_id_for(filled.action_id),
    }
    client.cancel(order_id_for(resting.action_id))
    client.cancel(order_id_for(filled.action_id))
    world.broker.set_price("EURUSD", D("1.0970"))  # fills only the 1.0980 buy limit
    engine.sync_once()
    [entry] = client.report()
    assert (entry.code, entry.facts["status"]) == ("rejected:target_changed", "filled")
    assert client.outbox.server_state().orders == []
    assert [p.position_id for p in client.outbox.server_state().positions] == [position_id_for(filled.action_id)]


def test_dependency_rejected_cascades_on_the_server(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("9"), ref_price=D("1.1"))  # over max_lot: rejected
    client.close(position_id_for(opened.action_id))
    engine.sync_once()
    assert [e.code for e in client.report()] == ["rejected:compliance:max_lot", "rejected:dependency_rejected"]


def test_unknown_targets_are_invalid(world: World) -> None:
    client, engine, _ = world.device("phone")
    client.modify("pos-nope", stop_loss=None, take_profit=None, expected_version=1)
    client.close("pos-nope", expected_version=1)
    client.cancel("ord-nope", expected_version=1)
    engine.sync_once()
    assert [e.code for e in client.report()] == ["rejected:invalid"] * 3


def test_settings_merge_last_writer_wins_per_field_in_server_order(world: World) -> None:
    phone, phone_sync, _ = world.device("phone")
    laptop, laptop_sync, _ = world.device("laptop")
    laptop.set_settings({"risk": "0.5", "theme": "dark"})
    phone.set_settings({"risk": "1.0", "lang": "en"})
    phone_sync.sync_once()
    laptop_sync.sync_once()  # applied later: wins for "risk"
    phone_sync.sync_once()
    expected = {"lang": "en", "risk": "0.5", "theme": "dark"}
    assert world.store.settings(world.user) == expected
    assert phone.outbox.server_state().settings == expected == laptop.outbox.server_state().settings


def test_provider_outage_is_retryable_and_does_not_block_other_actions(world: World) -> None:
    client, engine, _ = world.device("phone")
    opened = client.open("XAUUSD", "buy", D("1"), ref_price=D("2000"))
    client.set_settings({"theme": "dark"})
    world.broker.available = False
    summary = engine.sync_once()
    assert summary.transport_error is not None, "the pull needs the provider snapshot too"
    assert (summary.applied, summary.retrying) == (1, 1)
    record = client.outbox.get(opened.action_id)
    assert record is not None
    assert (record.state, record.last_error) == ("pending", "retryable:provider_unavailable")
    world.broker.available = True
    assert engine.sync_once().applied == 1
    assert client.report() == []


def test_no_price_is_retryable_fail_closed(world: World) -> None:
    client, engine, _ = world.device("phone")
    client.open("GBPUSD", "buy", D("1"), ref_price=D("1.3"))
    assert engine.sync_once().retrying == 1
    world.broker.set_price("GBPUSD", D("1.3"))
    assert engine.sync_once().applied == 1


def test_crash_between_effect_and_record_is_reconciled_by_client_order_id(world: World) -> None:
    client, _, _ = world.device("phone")
    opened = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    closing = client.close(position_id_for(opened.action_id))
    request = PushRequest(device_id="phone", sent_at_device=world.clock(),
                          actions=[PushedAction(opened, 0), PushedAction(closing, 0)])  # fmt: skip
    fresh_store_server = SyncServer(InMemoryServerStore(), world.broker, world.limits, clock=world.clock)
    fresh_store_server.push(world.user, request)  # effects happen; this store's records are "lost"
    results = world.server.push(world.user, request).results
    assert [(r.code, r.facts.get("reconciled")) for r in results] == [("applied", "1"), ("applied", "1")]
    assert len(world.broker.fills) == 2, "reconciled, not executed again"


def test_pull_pages_outcomes_in_server_order(world: World) -> None:
    client, engine, _ = world.device("phone")
    for i in range(7):
        client.acknowledge(f"note-{i}")
    engine.sync_once()
    first = world.server.pull(world.user, PullRequest(device_id="phone", cursor=0, limit=3))
    assert (len(first.outcomes), first.more) == (3, True)
    rest = world.server.pull(world.user, PullRequest(device_id="phone", cursor=first.cursor, limit=10))
    assert (len(rest.outcomes), rest.more) == (4, False)
    assert [o.seq for o in first.outcomes + rest.outcomes] == list(range(1, 8))
    empty = world.server.pull(world.user, PullRequest(device_id="phone", cursor=rest.cursor))
    assert (empty.outcomes, empty.cursor) == ([], rest.cursor)
    assert world.store.acks(world.user) == {f"note-{i}" for i in range(7)}


def test_targeting_an_unknown_position_without_version_is_refused_on_the_device(world: World) -> None:
    client, _, _ = world.device("phone")
    with pytest.raises(ValueError, match="pass expected_version"):
        client.close("pos-unknown")
    with pytest.raises(ValueError, match="pass expected_version"):
        client.modify("pos-unknown", stop_loss=None, take_profit=None)
    with pytest.raises(ValueError, match="unknown order"):
        client.cancel("ord-not-a-uuid")


class _CrashOnce:
    """A compliance advisor that fails once (a crash in the middle of a batch, after earlier effects)."""

    def __init__(self, inner: SimpleLimits) -> None:
        self.inner, self.calls = inner, 0

    def advise(self, action: Action, account: AccountView) -> AdvisoryDecision:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("server crashed mid-batch")
        return self.inner.advise(action, account)


def test_a_crash_mid_batch_rolls_back_the_records_and_the_resend_reconciles(world: World) -> None:
    client, _, _ = world.device("phone")
    first = client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    second = client.open("EURUSD", "sell", D("1"), ref_price=D("1.1"))
    request = PushRequest(device_id="phone", sent_at_device=world.clock(),
                          actions=[PushedAction(first, 0), PushedAction(second, 0)])  # fmt: skip
    crashing = SyncServer(world.store, world.broker, _CrashOnce(world.limits), clock=world.clock)
    with pytest.raises(RuntimeError, match="mid-batch"):
        crashing.push(world.user, request)
    assert len(world.broker.fills) == 1, "the first order reached the provider"
    assert world.store.outcome(world.user, first.action_id) is None, "its record rolled back with the batch"
    results = crashing.push(world.user, request).results
    assert [r.code for r in results] == ["applied", "applied"]
    assert len(world.broker.fills) == 2, "resend reconciled the first order instead of placing it again"
    assert results[0].facts["reconciled"] == "1"
