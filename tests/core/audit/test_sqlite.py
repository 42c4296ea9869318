"""The SQLite store on real files: durability settings, raw-SQL tampering, concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.audit import (
    AuditEntry,
    AuditRecord,
    AuditStoreError,
    SQLiteAuditStore,
    TamperKind,
    VerifyReport,
    is_sqlite_file,
    verify_store,
)
from tests.core.audit.conftest import StepClock, make_entry

CHAIN = "acc-main"


def fill(path: Path, count: int = 6) -> list[AuditRecord]:
    with SQLiteAuditStore(path, clock=StepClock()) as store:
        return [store.append(make_entry(index)) for index in range(count)]


def check(path: Path) -> VerifyReport:
    with SQLiteAuditStore(path, readonly=True) as store:
        reports = verify_store(store, CHAIN)
    assert len(reports) == 1
    return reports[0]


def tamper(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def issues(report: VerifyReport) -> list[tuple[str, int, int | None]]:
    return [(str(i.kind), i.position, i.sequence) for i in report.issues]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    fill(path)
    return path


def test_pragmas_and_reopen(db: Path) -> None:
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    assert is_sqlite_file(db)
    with SQLiteAuditStore(db) as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.head(CHAIN) is not None
        record = store.append(make_entry(7))
        assert record.sequence == 6
    assert check(db).ok
    assert check(db).records == 7


def test_records_survive_reopen_bit_for_bit(db: Path) -> None:
    written = fill(db.with_name("other.db"), 3)
    with SQLiteAuditStore(db.with_name("other.db"), readonly=True) as store:
        assert list(store.scan(CHAIN)) == written


def test_update_is_edited(db: Path) -> None:
    tamper(db, "UPDATE audit_records SET outcome = 'allowed' WHERE sequence = 1")
    assert issues(check(db)) == [("edited", 1, 1)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET rules = '[]' WHERE sequence = 4",
        "UPDATE audit_records SET recorded_at = '2026-01-01T00:00:00.000000Z' WHERE sequence = 4",
        "UPDATE audit_records SET input = json_set(input, '$.state.equity', '99999') WHERE sequence = 4",
        "UPDATE audit_records SET hash = substr(hash, 2) || '0' WHERE sequence = 4",
        "UPDATE audit_records SET account_id = NULL WHERE sequence = 4",
    ],
)
def test_any_column_update_is_edited(db: Path, statement: str) -> None:
    tamper(db, statement)
    report = check(db)
    assert not report.ok
    assert {(i.kind, i.position) for i in report.issues} == {(TamperKind.EDITED, 4)}


def test_update_that_breaks_decoding_is_malformed(db: Path) -> None:
    tamper(db, "UPDATE audit_records SET rules = 'not json' WHERE sequence = 2")
    assert issues(check(db)) == [("malformed", 2, 2)]
    assert "row id" in check(db).issues[0].detail


def test_delete_middle_and_last(db: Path) -> None:
    tamper(db, "DELETE FROM audit_records WHERE sequence = 2")
    assert issues(check(db)) == [("deleted", 2, 3)]
    tamper(db, "DELETE FROM audit_records WHERE sequence = 5")
    report = check(db)
    assert ("deleted", 4, None) in issues(report)  # the anchored head still says 5
    assert "at the end" in report.issues[-1].detail


def test_delete_everything_is_detected_through_the_head(db: Path) -> None:
    tamper(db, "DELETE FROM audit_records")
    assert issues(check(db)) == [("deleted", 0, None)]


def test_insert_forged_row_beyond_the_head(db: Path) -> None:
    tamper(
        db,
        "INSERT INTO audit_records (format, chain_id, sequence, recorded_at, kind, rules, hash_alg, prev_hash, hash) "
        "SELECT format, chain_id, 6, recorded_at, kind, rules, hash_alg, hash, hash FROM audit_records "
        "WHERE sequence = 5",
    )
    report = check(db)
    assert ("inserted", 6, 6) in issues(report)
    assert ("edited", 6, 6) in issues(report)


def test_insert_row_claiming_a_free_negative_sequence(db: Path) -> None:
    tamper(
        db,
        "INSERT INTO audit_records (format, chain_id, sequence, recorded_at, kind, rules, hash_alg, prev_hash, hash) "
        "SELECT format, chain_id, -1, recorded_at, kind, rules, hash_alg, prev_hash, hash FROM audit_records "
        "WHERE sequence = 3",
    )
    kinds = {(kind, position) for kind, position, _ in issues(check(db))}
    assert ("inserted", 6) in kinds or ("edited", 6) in kinds
    assert all(position == 6 for _, position in kinds)


def test_reordered_rows(db: Path) -> None:
    # Swap the storage (append) order of the rows holding sequences 1 and 3; every value stays untouched.
    tamper(
        db,
        "UPDATE audit_records SET id = -2 WHERE sequence = 1",
        "UPDATE audit_records SET id = -4 WHERE sequence = 3",
        "UPDATE audit_records SET id = 4 WHERE id = -2",
        "UPDATE audit_records SET id = 2 WHERE id = -4",
    )
    report = check(db)  # append order now reads sequences 0, 3, 2, 1, 4, 5
    assert [kind for kind, _, _ in issues(report)] == ["reordered", "reordered"]
    assert {position for _, position, _ in issues(report)} <= {1, 2, 3}


def test_swapped_sequence_numbers_are_edits(db: Path) -> None:
    tamper(
        db,
        "UPDATE audit_records SET sequence = -1 WHERE sequence = 1",
        "UPDATE audit_records SET sequence = 1 WHERE sequence = 2",
        "UPDATE audit_records SET sequence = 2 WHERE sequence = -1",
    )
    assert issues(check(db)) == [("edited", 1, 2), ("edited", 2, 1)]  # positions stay, stored numbers shown


def test_moving_the_head_does_not_hide_a_deletion_in_the_middle(db: Path) -> None:
    tamper(db, "DELETE FROM audit_records WHERE sequence = 3")
    assert issues(check(db)) == [("deleted", 3, 4)]


def test_not_an_audit_store(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    with pytest.raises(AuditStoreError, match="not a SignalOS audit store") as excinfo:
        SQLiteAuditStore(other, readonly=True)
    assert excinfo.value.path == str(other)
    with pytest.raises(AuditStoreError, match="cannot open"):
        SQLiteAuditStore(tmp_path / "missing.db", readonly=True)


def test_readonly_store_never_writes(db: Path) -> None:
    with SQLiteAuditStore(db, readonly=True) as store, pytest.raises(AuditStoreError, match="cannot append"):
        store.append(make_entry())


def test_write_lock_timeout_is_a_store_error(db: Path) -> None:
    store = SQLiteAuditStore(db, timeout=0.05)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(AuditStoreError, match="locked"):
            store.append(make_entry())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


def test_failed_append_rolls_back(db: Path) -> None:
    def broken_clock() -> object:
        raise RuntimeError("clock failed")

    with SQLiteAuditStore(db, clock=broken_clock) as store:  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            store.append(make_entry())
        assert not store._conn.in_transaction
    assert check(db).records == 6


def test_threads_sharing_and_not_sharing_a_store(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    shared = SQLiteAuditStore(path)

    def work(own: bool, worker: int) -> None:
        store = SQLiteAuditStore(path) if own else shared
        for index in range(15):
            store.append(make_entry(index, reason=f"worker {worker}"))
        if own:
            store.close()

    threads = [threading.Thread(target=work, args=(n % 2 == 0, n)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    report = check(path)
    assert report.ok, report.issues
    assert report.records == 60
    assert report.head is not None
    assert report.head.sequence == 59


_WRITER = """
import sys
from signalos_core.audit import AuditEntry, SQLiteAuditStore
with SQLiteAuditStore(sys.argv[1]) as store:
    for index in range(int(sys.argv[2])):
        store.append(AuditEntry(kind="enforcement", chain_id="acc-main", account_id="acc", reason=sys.argv[3]))
"""


def test_two_processes_appending_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "procs.db"
    root = Path(__file__).resolve().parents[3]
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "40", f"p{n}"], cwd=root)  # noqa: S603 - our own interpreter and script
        for n in range(2)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    report = check(path)
    assert report.ok, report.issues
    assert report.records == 80


def test_entry_validation_happens_before_the_transaction(db: Path) -> None:
    with SQLiteAuditStore(db) as store:
        with pytest.raises(ValueError, match="kind"):
            store.append(AuditEntry(kind="Bad Kind"))
        assert not store._conn.in_transaction


def test_database_error_inside_an_append_rolls_back(db: Path) -> None:
    # Someone moved the head back: the next sequence number collides with a stored record (UNIQUE constraint).
    tamper(db, "UPDATE audit_heads SET sequence = 2")
    with SQLiteAuditStore(db) as store:
        with pytest.raises(AuditStoreError, match="UNIQUE"):
            store.append(make_entry())
        assert not store._conn.in_transaction


def test_query_refuses_to_return_an_unreadable_row(db: Path) -> None:
    tamper(db, "UPDATE audit_records SET recorded_at = 'yesterday' WHERE sequence = 3")
    from signalos_core.audit import AuditQuery

    with SQLiteAuditStore(db, readonly=True) as store:
        assert len(store.query(AuditQuery(limit=3)).items) == 3
        with pytest.raises(AuditStoreError, match="row id 4 is unreadable"):
            store.query(AuditQuery())


_COLUMN_EDITS = {
    "outcome": "'tampered'",
    "account_id": "'acc-x'",
    "recorded_at": "'2020-01-01T00:00:00.000000Z'",
    "rules": "'[]'",
    "input": "'{\"state\":{}}'",
    "input_digest": "'" + "0" * 64 + "'",
    "profile_version": "'2099.1'",
    "prev_hash": "'" + "1" * 64 + "'",
    "hash": "'" + "2" * 64 + "'",
    "kind": "'enforcement'",
}


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(min_value=2, max_value=7),
    mutation=st.sampled_from(["update", "delete", "swap"]),
    column=st.sampled_from(sorted(_COLUMN_EDITS)),
    data=st.data(),
)
def test_any_single_raw_sql_mutation_is_located(count: int, mutation: str, column: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        fill(path, count)
        target = data.draw(st.integers(min_value=0, max_value=count - 1), label="target")
        if mutation == "update":
            tamper(path, f"UPDATE audit_records SET {column} = {_COLUMN_EDITS[column]} WHERE sequence = {target}")  # noqa: S608 - test constants
            where = {target}
        elif mutation == "delete":
            tamper(path, f"DELETE FROM audit_records WHERE sequence = {target}")  # noqa: S608 - test constants
            where = {target}  # the record now at that position (or the end, for the last one)
        else:
            other = data.draw(
                st.integers(min_value=0, max_value=count - 1).filter(lambda n: n != target), label="other"
            )
            tamper(
                path,
                f"UPDATE audit_records SET id = -1 WHERE sequence = {target}",  # noqa: S608 - test constants
                f"UPDATE audit_records SET id = {target + 1} WHERE sequence = {other}",  # noqa: S608 - test constants
                f"UPDATE audit_records SET id = {other + 1} WHERE id = -1",  # noqa: S608 - test constants
            )
            where = set(range(min(target, other), max(target, other) + 1))
        report = check(path)
        assert not report.ok
        assert all(issue.position in where for issue in report.issues), (mutation, column, where, report.issues)
