"""Entries, sealing and the hash: the exact construction documented in docs/audit.md."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from signalos_core.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditFormatError,
    AuditRecord,
    HashAlgorithm,
    RecordKind,
    compute_hash,
    seal,
    sha256_hex,
)

WHEN = datetime(2026, 5, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))


def test_spec_vector_the_service_can_reproduce() -> None:
    entry = AuditEntry(
        kind=RecordKind.DECISION,
        account_id="acc-1",
        chain_id="acc-1",
        profile_id="ftmo",
        profile_version="1",
        profile_hash="0f" * 32,
        backend="python",
        input={"state": {"equity": Decimal("94999.990")}, "order": {"size": Decimal("1.00")}},
        outcome="denied",
        rules=[{"rule_id": "ftmo.max_daily_loss", "value": Decimal("94999.99"), "threshold": Decimal("95000.00")}],
    )
    record = seal(entry, sequence=0, prev_hash=GENESIS_HASH, recorded_at=WHEN)
    input_json = b'{"order":{"size":"1"},"state":{"equity":"94999.99"}}'
    digest = hashlib.sha256(input_json).hexdigest()
    body = (
        b'{"account_id":"acc-1","actor":null,"backend":"python","chain_id":"acc-1","details":null,"format":1,'
        b'"hash_alg":"sha256","input":' + input_json + b',"input_digest":"' + digest.encode() + b'",'
        b'"kind":"decision","outcome":"denied","prev_hash":"' + b"0" * 64 + b'","profile_hash":"' + b"0f" * 32 + b'",'
        b'"profile_id":"ftmo","profile_version":"1","reason":null,"recorded_at":"2026-05-11T22:00:01.000000Z",'
        b'"rules":[{"rule_id":"ftmo.max_daily_loss","threshold":"95000","value":"94999.99"}],"sequence":0}'
    )
    assert record.input_digest == digest
    assert record.hash == hashlib.sha256(b"0" * 64 + body).hexdigest()
    assert record.recorded_at == datetime(2026, 5, 11, 22, 0, 1, tzinfo=UTC)
    assert record.recorded_at.tzinfo is UTC


def test_hmac_keyed_hash() -> None:
    key = b"k" * 32
    record = seal(AuditEntry(kind="decision"), sequence=0, prev_hash=GENESIS_HASH, recorded_at=WHEN, key=key)
    assert record.hash_alg == HashAlgorithm.HMAC_SHA256
    from signalos_core.audit import canonical_json

    message = GENESIS_HASH.encode() + canonical_json(record.body())
    assert record.hash == hmac.new(key, message, hashlib.sha256).hexdigest()
    assert compute_hash(record, key) == record.hash
    with pytest.raises(AuditFormatError, match="key is needed"):
        compute_hash(record)
    with pytest.raises(AuditFormatError, match="unknown algorithm"):
        compute_hash(msgspec.structs.replace(record, hash_alg="md5"))


def test_each_record_links_to_the_previous_hash() -> None:
    first = seal(AuditEntry(kind="decision"), sequence=0, prev_hash=GENESIS_HASH, recorded_at=WHEN)
    second = seal(AuditEntry(kind="decision"), sequence=1, prev_hash=first.hash, recorded_at=WHEN)
    assert second.prev_hash == first.hash
    assert second.hash != first.hash  # the sequence (and link) are hashed


def test_entry_time_wins_over_the_store_clock() -> None:
    entry = AuditEntry(kind="decision", recorded_at=WHEN)
    record = seal(entry, sequence=0, prev_hash=GENESIS_HASH, recorded_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert record.recorded_at == WHEN


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "Decision"}, "kind"),
        ({"kind": "decision", "chain_id": " "}, "chain_id"),
        ({"kind": "decision", "chain_id": None}, "chain_id"),
        ({"kind": "decision", "account_id": ""}, "account_id"),
        ({"kind": "decision", "outcome": 3}, "outcome"),
        ({"kind": "decision", "actor": 3}, "actor"),
        ({"kind": "manual_reset", "actor": "ops@firm"}, "actor"),
        ({"kind": "decision", "recorded_at": datetime(2026, 5, 12)}, "recorded_at"),  # noqa: DTZ001 - naive on purpose
        ({"kind": "decision", "rules": [{"value": 1}]}, "rules"),
        ({"kind": "decision", "rules": "ftmo"}, "rules"),
        ({"kind": "decision", "rules": [{"rule_id": "r", "value": 0.5}]}, "rules[0].value"),
        ({"kind": "decision", "input": {"equity": 1.0}}, "input.equity"),
        ({"kind": "decision", "input": {"a": 1}, "input_digest": "0" * 64}, "input_digest"),
        ({"kind": "decision", "input_digest": "XYZ"}, "input_digest"),
        ({"kind": "decision", "details": {"x": float("inf")}}, "details.x"),
    ],
)
def test_invalid_entries_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(AuditFormatError) as excinfo:
        AuditEntry(**fields)  # type: ignore[arg-type]
    assert excinfo.value.field == field


def test_entry_lowers_input_and_computes_its_digest() -> None:
    entry = AuditEntry(kind="enforcement", input={"event": {"equity": Decimal("10.50")}})
    assert entry.input == {"event": {"equity": "10.5"}}
    assert entry.input_digest == sha256_hex({"event": {"equity": "10.5"}})
    digest_only = AuditEntry(kind="enforcement", input_digest=entry.input_digest)
    assert digest_only.input is None


def test_manual_reset_carries_actor_and_reason() -> None:
    entry = AuditEntry(kind=RecordKind.MANUAL_RESET, account_id="acc-1", actor="ops@firm", reason="broker outage")
    record = seal(entry, sequence=0, prev_hash=GENESIS_HASH, recorded_at=WHEN)
    assert (record.kind, record.actor, record.reason) == ("manual_reset", "ops@firm", "broker outage")


def test_seal_refuses_an_impossible_position() -> None:
    with pytest.raises(AuditFormatError, match="sequence"):
        seal(AuditEntry(kind="decision"), sequence=-1, prev_hash=GENESIS_HASH, recorded_at=WHEN)
    with pytest.raises(AuditFormatError, match="genesis"):
        seal(AuditEntry(kind="decision"), sequence=0, prev_hash="1" * 64, recorded_at=WHEN)


def test_record_helpers() -> None:
    entry = AuditEntry(kind="decision", rules=[{"rule_id": "a"}, {"rule_id": "b", "outcome": "deny"}])
    record = seal(entry, sequence=0, prev_hash=GENESIS_HASH, recorded_at=WHEN)
    assert record.rule_ids == ["a", "b"]
    assert "hash" not in record.body()
    assert len(record.body()) == 19
    assert record.to_json_dict()["hash"] == record.hash
    assert msgspec.json.decode(msgspec.json.encode(record), type=AuditRecord) == record
