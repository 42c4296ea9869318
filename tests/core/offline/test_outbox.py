"""The outbox is durable, paged, and refuses corrupt, foreign or locked files without touching them."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signalos_core.offline import (
    AckPayload,
    Action,
    ActionOutcome,
    OfflineClient,
    Outbox,
    OutboxError,
    ServerState,
    SettingsPayload,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _ack(outbox: Outbox, subject: str = "sig-1") -> Action:
    def build(seq: int) -> Action:
        return Action(
            action_id=uuid.uuid4(),
            device_id=outbox.device_id,
            seq=seq,
            kind="ack",
            created_at_device=T0,
            expires_at=T0 + timedelta(days=1),
            payload=AckPayload(subject=subject),
        )

    return outbox.enqueue("ack", build)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_enqueued_actions_survive_reopening_in_seq_order(make_outbox: Callable[..., Outbox], tmp_path: Path) -> None:
    outbox = make_outbox(device_id="phone")
    actions = [_ack(outbox, f"s{i}") for i in range(5)]
    assert [a.seq for a in actions] == [1, 2, 3, 4, 5]
    outbox.close()
    again = make_outbox()
    assert again.device_id == "phone"
    assert [r.action for r in again.iter_unfinished(page=2)] == actions
    assert again.counts() == {"pending": 5, "sending": 0, "terminal": 0}
    assert again.get(actions[2].action_id) is not None
    assert again.get(uuid.uuid4()) is None
    assert _ack(again).seq == 6, "seq continues after reopening"


def test_a_new_outbox_gets_a_device_id_and_refuses_another(make_outbox: Callable[..., Outbox]) -> None:
    outbox = make_outbox()
    assert outbox.device_id.startswith("dev-")
    outbox.close()
    with pytest.raises(OutboxError, match="belongs to device") as info:
        make_outbox(device_id="someone-else")
    assert info.value.path is not None


def test_durability_levels(make_outbox: Callable[..., Outbox]) -> None:
    outbox = make_outbox()
    assert outbox.sync_level("open") == "FULL"
    assert outbox.sync_level("settings") == "FULL", "safety settings (pause) must survive power loss"
    assert outbox.sync_level("ack") == "NORMAL"
    strict = make_outbox("strict.db", relaxed_kinds=())
    assert strict.sync_level("ack") == "FULL"
    with pytest.raises(ValueError, match="always committed with synchronous=FULL"):
        make_outbox("bad.db", relaxed_kinds=("open",))


def test_enqueue_refuses_an_action_that_does_not_use_the_assigned_seq(make_outbox: Callable[..., Outbox]) -> None:
    outbox = make_outbox(device_id="phone")

    def build(seq: int) -> Action:
        return Action(
            action_id=uuid.uuid4(), device_id="phone", seq=seq + 1, kind="ack",
            created_at_device=T0, expires_at=T0 + timedelta(days=1), payload=AckPayload(subject="x"),
        )  # fmt: skip

    with pytest.raises(ValueError, match="seq and device id"):
        outbox.enqueue("ack", build)
    assert outbox.counts()["pending"] == 0, "the failed enqueue rolled back"
    assert _ack(outbox).seq == 1, "and did not consume a seq"


def test_keyset_pages_and_bookkeeping(make_outbox: Callable[..., Outbox]) -> None:
    outbox = make_outbox(device_id="phone")
    actions = [_ack(outbox, f"s{i}") for i in range(7)]
    page = outbox.unfinished(after_seq=2, limit=3)
    assert [r.action.seq for r in page] == [3, 4, 5]
    outbox.mark_sending([1, 2])
    assert outbox.counts()["sending"] == 2
    assert outbox.recover_sending() == 2
    first = outbox.get(actions[0].action_id)
    assert first is not None
    assert first.maybe_delivered
    assert first.state == "pending"
    outbox.mark_retry([1], error="retryable:provider_unavailable", next_attempt_at=lambda n: 100.0 * n)
    first = outbox.get(actions[0].action_id)
    assert first is not None
    assert (first.attempts, first.last_error, first.next_attempt_at) == (1, "retryable:provider_unavailable", 100.0)
    applied = ActionOutcome(action_id=actions[0].action_id, seq=1, code="applied")
    expired = ActionOutcome(action_id=actions[1].action_id, seq=2, code="expired:ttl", message="too old",
                            facts={"age_ms": "9"})  # fmt: skip
    assert outbox.finish([applied, expired, applied]) == 2, "an outcome for a terminal action is ignored"
    assert [r.action.seq for r in outbox.unfinished()] == [3, 4, 5, 6, 7]
    report = outbox.report()
    assert [(e.action.seq, e.code, e.message, e.facts) for e in report] == [
        (2, "expired:ttl", "too old", {"age_ms": "9"})
    ]
    assert outbox.acknowledge_report() == 1
    assert outbox.report() == []
    assert outbox.report(include_acknowledged=True)[0].acknowledged


def test_pull_mirror_is_persisted(make_outbox: Callable[..., Outbox]) -> None:
    outbox = make_outbox(device_id="phone")
    assert outbox.cursor == 0
    assert outbox.server_state() == ServerState()
    state = ServerState(settings={"paused": True}, cancelled_signals=["sig-9"])
    outbox.save_pull(42, state)
    outbox.close()
    again = make_outbox()
    assert (again.cursor, again.server_state()) == (42, state)


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database at all" * 100)
    before = _digest(path)
    with pytest.raises(OutboxError, match="not an SQLite outbox"):
        Outbox(path)
    assert _digest(path) == before


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    db.close()
    with pytest.raises(OutboxError, match="not a SignalOS outbox"):
        Outbox(path)


def test_a_corrupted_page_is_detected_on_open_and_the_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, device_id="phone")
    for i in range(400):
        _ack(outbox, f"subject-{i}")
    outbox.close()
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    assert len(data) > 6 * page_size
    for offset in range(3 * page_size, 5 * page_size, 7):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    before = _digest(path)
    with pytest.raises(OutboxError, match="corrupt") as info:
        Outbox(path)
    assert info.value.path == str(path)
    assert _digest(path) == before, "never recreated or repaired over a corrupt file"


def test_a_locked_outbox_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, device_id="phone", busy_timeout=0.05)
    _ack(outbox)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OutboxError, match="locked by another process"):
            _ack(outbox)
        with pytest.raises(OutboxError, match="locked by another process"):
            Outbox(path, busy_timeout=0.05)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _ack(outbox).seq == 2, "usable again once the lock is released; nothing was lost"
    assert outbox.counts()["pending"] == 2
    outbox.close()


def test_client_settings_store_decimals_as_text(make_outbox: Callable[..., Outbox]) -> None:
    from decimal import Decimal

    client = OfflineClient(make_outbox(device_id="phone"))
    action = client.set_settings({"lot": Decimal("0.10"), "paused": False})
    assert isinstance(action.payload, SettingsPayload)
    assert action.payload.changes == {"lot": "0.10", "paused": False}


def test_an_action_that_could_not_be_read_back_is_refused_before_it_is_stored(
    make_outbox: Callable[..., Outbox],
) -> None:
    outbox = make_outbox(device_id="phone")

    def build(seq: int) -> Action:
        # Built in Python, patterns are not checked; the outbox checks them before storing.
        return Action(
            action_id=uuid.uuid4(), device_id="phone", seq=seq, kind="ack",
            created_at_device=T0, expires_at=T0 + timedelta(days=1), payload=AckPayload(subject="bad subject!"),
        )  # fmt: skip

    with pytest.raises(ValueError, match="subject"):
        outbox.enqueue("ack", build)
    with pytest.raises(ValueError, match="subject"):
        outbox.enqueue_many("ack", [build])
    assert outbox.counts() == {"pending": 0, "sending": 0, "terminal": 0}
