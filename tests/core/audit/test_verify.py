"""verify(): every kind of tampering is detected and located, on plain record lists."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalos_core.audit import (
    GENESIS_HASH,
    AuditFormatError,
    AuditIntegrityError,
    AuditRecord,
    ChainHead,
    MemoryAuditStore,
    UnreadableRecord,
    VerifyReport,
    compute_hash,
    seal,
    verify,
    verify_chains,
)
from tests.core.audit.conftest import START, StepClock, make_entry


def build(count: int, *, key: bytes | None = None, chain: str = "acc-main") -> tuple[list[AuditRecord], ChainHead]:
    store = MemoryAuditStore(clock=StepClock(), key=key)
    for index in range(count):
        store.append(make_entry(index, chain_id=chain))
    records = [r for r in store.scan(chain) if isinstance(r, AuditRecord)]
    head = store.head(chain)
    assert head is not None
    return records, head


def edit(record: AuditRecord, *, rehash: bool = False, key: bytes | None = None, **changes: object) -> AuditRecord:
    changed = msgspec.structs.replace(record, **changes)
    return msgspec.structs.replace(changed, hash=compute_hash(changed, key)) if rehash else changed


def kinds_at(report: VerifyReport) -> list[tuple[str, int]]:
    return [(str(issue.kind), issue.position) for issue in report.issues]


def test_intact_chain() -> None:
    records, head = build(5)
    report = verify(records, anchor=head)
    assert report.ok
    assert report.records == 5
    assert report.head == head
    assert report.index is None
    report.raise_if_tampered()  # no exception


def test_empty_chain_is_intact_unless_anchored() -> None:
    assert verify([]).ok
    report = verify([], anchor=ChainHead(chain_id="c", sequence=2, hash="a" * 64))
    assert kinds_at(report) == [("deleted", 0)]
    assert "0..2" in report.issues[0].detail


def test_edit_is_located() -> None:
    records, head = build(5)
    records[2] = edit(records[2], outcome="allowed" if records[2].outcome == "denied" else "denied")
    report = verify(records, anchor=head)
    assert kinds_at(report) == [("edited", 2)]
    with pytest.raises(AuditIntegrityError) as excinfo:
        report.raise_if_tampered()
    assert excinfo.value.index == 2
    assert excinfo.value.reason == "edited"
    assert excinfo.value.chain_id == "acc-main"
    assert len(excinfo.value.issues) == 1


def test_edit_with_recomputed_hash_is_caught_by_the_next_link() -> None:
    records, head = build(5)
    records[1] = edit(records[1], rehash=True, outcome="allowed", rules=())
    report = verify(records, anchor=head)
    assert kinds_at(report) == [("edited", 1)]
    assert "re-hashed" in report.issues[0].detail


def test_rehashed_last_record_needs_the_anchor() -> None:
    records, head = build(4)
    records[3] = edit(records[3], rehash=True, outcome="tampered")
    assert verify(records).ok  # without an anchor a re-hashed tip is indistinguishable from the original
    assert kinds_at(verify(records, anchor=head)) == [("edited", 3)]


def test_deleted_middle_record() -> None:
    records, head = build(5)
    del records[2]
    report = verify(records, anchor=head)
    assert kinds_at(report) == [("deleted", 2)]
    assert report.issues[0].detail == "sequence 2 missing before it"


def test_deleted_first_and_last_records() -> None:
    records, head = build(5)
    assert kinds_at(verify(records[1:], anchor=head)) == [("deleted", 0)]
    report = verify(records[:3], anchor=head)
    assert kinds_at(report) == [("deleted", 3)]
    assert "3..4 missing at the end" in report.issues[0].detail
    assert verify(records[:3]).ok  # truncation is only visible against an anchor


def test_inserted_forged_duplicate() -> None:
    records, head = build(5)
    forged = edit(records[2], rehash=True, outcome="allowed", rules=())
    records.insert(4, forged)
    report = verify(records, anchor=head)
    assert ("inserted", 4) in kinds_at(report)
    assert all(issue.position == 4 for issue in report.issues)


def test_inserted_copy_is_reported_once() -> None:
    records, head = build(5)
    records.insert(3, records[1])
    report = verify(records, anchor=head)
    assert [str(i.kind) for i in report.issues] == ["inserted"]
    assert report.issues[0].sequence == 1


def test_appended_forgery_beyond_the_anchor() -> None:
    records, head = build(3)
    forged = seal(make_entry(9, chain_id="acc-main"), sequence=3, prev_hash=records[-1].hash, recorded_at=START)
    assert verify([*records, forged]).ok  # a well-formed append: only the anchor knows better
    assert kinds_at(verify([*records, forged], anchor=head)) == [("inserted", 3)]


def test_foreign_chain_record_and_negative_sequence() -> None:
    records, head = build(3)
    other, _ = build(1, chain="other")
    report = verify([*records[:2], other[0], records[2]], anchor=head)
    assert kinds_at(report) == [("inserted", 2)]
    negative = edit(records[0], rehash=True, sequence=-1)
    report = verify([*records, negative], anchor=head)
    assert ("inserted", 3) in kinds_at(report)


def test_swapped_records_are_reordered() -> None:
    records, head = build(6)
    records[1], records[4] = records[4], records[1]
    assert kinds_at(verify(records, anchor=head)) == [("reordered", 1), ("reordered", 4)]


def test_moved_record_is_the_one_reported() -> None:
    records, head = build(6)
    records.insert(0, records.pop(4))
    assert kinds_at(verify(records, anchor=head)) == [("reordered", 0)]


def test_broken_genesis_link() -> None:
    records, head = build(2)
    records[0] = edit(records[0], rehash=True, prev_hash="1" * 64)
    report = verify(records, anchor=head)
    assert kinds_at(report) == [("edited", 0), ("edited", 0)]
    assert {issue.detail.split(":")[0] for issue in report.issues} == {
        "first record does not link to the chain start (genesis)",
        "re-hashed after an edit",
    }


def test_segment_verification_from_a_known_start() -> None:
    records, head = build(6)
    report = verify(records[3:], anchor=head, start_sequence=3, start_prev_hash=records[2].hash)
    assert report.ok
    assert not verify(records[3:], start_sequence=3, start_prev_hash=GENESIS_HASH).ok


def test_unreadable_records_are_malformed() -> None:
    records, head = build(3)
    broken = UnreadableRecord(error="bad JSON", sequence=1, chain_id="acc-main", location="line 2")
    report = verify([records[0], broken, records[2]], anchor=head)
    assert kinds_at(report) == [("malformed", 1)]
    assert "line 2" in report.issues[0].detail
    nameless = UnreadableRecord(error="garbage")
    assert kinds_at(verify([records[0], nameless, records[1], records[2]], anchor=head)) == [("malformed", 1)]


def test_content_that_no_longer_encodes_is_an_edit() -> None:
    records, _ = build(2)
    records[1] = msgspec.structs.replace(records[1], input={"state": {"equity": 1.5}})
    report = verify(records)
    assert kinds_at(report) == [("edited", 1)]
    assert "no longer encodes" in report.issues[0].detail


def test_keyed_chain() -> None:
    key = b"secret-key-0123456789"
    records, head = build(3, key=key)
    assert verify(records, key=key, anchor=head).ok
    with pytest.raises(AuditFormatError, match="HMAC"):
        verify(records)
    assert kinds_at(verify(records, key=b"another-key-000000", anchor=head))[0] == ("edited", 0)
    # Downgrade attack: rewrite the whole chain with plain SHA-256 (every hash consistent).
    forged: list[AuditRecord] = []
    prev = GENESIS_HASH
    for record in records:
        plain = edit(record, hash_alg="sha256", prev_hash=prev, rehash=True)
        forged.append(plain)
        prev = plain.hash
    assert verify(forged).ok  # consistent on its own...
    assert {str(i.kind) for i in verify(forged, key=key).issues} == {"edited"}  # ...but not with the key


def test_verify_chains_splits_interleaved_records() -> None:
    store = MemoryAuditStore(clock=StepClock())
    for index in range(6):
        store.append(make_entry(index, chain_id=f"acc-{index % 2}"))
    every = [r for chain in ("acc-0", "acc-1") for r in store.scan(chain)]
    reports = verify_chains(every)
    assert [(r.chain_id, r.records, r.ok) for r in reports] == [("acc-0", 3, True), ("acc-1", 3, True)]
    anchors = {"acc-0": ChainHead(chain_id="acc-0", sequence=5, hash="f" * 64)}
    assert not verify_chains(every, anchors=anchors)[0].ok
    orphans = verify_chains([UnreadableRecord(error="x")])
    assert len(orphans) == 1
    assert kinds_at(orphans[0]) == [("malformed", 0)]
    leading = verify_chains([UnreadableRecord(error="x"), *store.scan("acc-0")])
    assert kinds_at(leading[0]) == [("malformed", 0)]


# --------------------------------------------------------------------------- property: any single mutation

MUTATIONS = ("edit", "edit_rehash", "delete", "insert_forged", "swap", "move")


@st.composite
def mutated_chains(draw: st.DrawFn) -> tuple[list[AuditRecord], ChainHead, str, set[int]]:
    """A random chain, one random mutation, and the positions where the damage may be reported."""
    count = draw(st.integers(min_value=2, max_value=10))
    records, head = build(count)
    mutation = draw(st.sampled_from(MUTATIONS))
    i = draw(st.integers(min_value=0, max_value=count - 1))
    if mutation in ("edit", "edit_rehash"):
        field = draw(st.sampled_from(["outcome", "account_id", "recorded_at", "rules", "input", "sequence"]))
        new_value = {
            "outcome": "tampered",
            "account_id": "acc-x",
            "recorded_at": records[i].recorded_at.replace(year=2020),
            "rules": (),
            "input": {"state": {"equity": "1"}},
            "sequence": records[i].sequence + 100,
        }[field]
        records[i] = edit(records[i], rehash=mutation == "edit_rehash", **{field: new_value})
        # a re-numbered record also shows as reordered/deleted/inserted around it; the edit is still at i
        return records, head, mutation, {i}
    if mutation == "delete":
        del records[i]
        return records, head, mutation, {i}
    if mutation == "insert_forged":
        victim = draw(st.integers(min_value=0, max_value=count - 1))
        forged = edit(records[victim], rehash=True, outcome="forged", reason="inserted")
        at = draw(st.integers(min_value=0, max_value=count))
        records.insert(at, forged)
        return records, head, mutation, {at}
    if mutation == "swap":
        j = draw(st.integers(min_value=0, max_value=count - 1).filter(lambda j: j != i))
        records[i], records[j] = records[j], records[i]
        # [2, 1, 0] is as much "0 and 2 swapped" as "1 and 2 moved": blame stays inside the swapped span
        return records, head, mutation, set(range(min(i, j), max(i, j) + 1))
    j = draw(st.integers(min_value=0, max_value=count - 1).filter(lambda j: j != i))
    records.insert(j, records.pop(i))
    return records, head, mutation, set(range(min(i, j), max(i, j) + 1))


@given(mutated_chains())
def test_any_single_mutation_is_detected_and_located(case: tuple[list[AuditRecord], ChainHead, str, set[int]]) -> None:
    records, head, mutation, where = case
    report = verify(records, anchor=head)
    assert not report.ok, mutation
    expected_kind = {
        "edit": "edited",
        "edit_rehash": "edited",
        "delete": "deleted",
        "insert_forged": "inserted",
        "swap": "reordered",
        "move": "reordered",
    }[mutation]
    located = [issue for issue in report.issues if str(issue.kind) == expected_kind and issue.position in where]
    assert located, (mutation, where, report.issues)
    if mutation in ("edit", "delete", "swap", "move"):
        # these leave no collateral damage: every issue points at the mutated positions
        assert all(issue.position in where for issue in report.issues), (mutation, where, report.issues)


def test_records_before_the_segment_start_are_inserted() -> None:
    records, head = build(4)
    report = verify([records[0], *records[2:]], start_sequence=2, start_prev_hash=records[1].hash, anchor=head)
    assert ("inserted", 0) in kinds_at(report)


def test_non_ascii_prev_hash_is_an_edit() -> None:
    records, _ = build(2)
    records[1] = msgspec.structs.replace(records[1], prev_hash="é" * 64)
    assert kinds_at(verify(records)) == [("edited", 1)]
