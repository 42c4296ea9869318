"""JSON-lines and CSV export, and reading a JSON-lines export back for verification."""

from __future__ import annotations

import csv
import io
import json

import pytest

from signalos_core.audit import (
    CSV_COLUMNS,
    AuditEntry,
    AuditFormatError,
    AuditRecord,
    MemoryAuditStore,
    UnreadableRecord,
    read_jsonl,
    verify_chains,
    write_csv,
    write_jsonl,
)
from tests.core.audit.conftest import StepClock, make_entry


def records(count: int = 4) -> list[AuditRecord]:
    store = MemoryAuditStore(clock=StepClock())
    return [store.append(make_entry(i)) for i in range(count)]


def test_jsonl_round_trip_is_byte_identical_and_verifies() -> None:
    written = records()
    out = io.StringIO()
    assert write_jsonl(written, out) == 4
    text = out.getvalue()
    assert text.count("\n") == 4
    back = list(read_jsonl(io.StringIO(text)))
    assert back == written
    again = io.StringIO()
    write_jsonl([r for r in back if isinstance(r, AuditRecord)], again)
    assert again.getvalue() == text
    assert all(report.ok for report in verify_chains(back))


def test_jsonl_lines_are_canonical_objects_with_every_field() -> None:
    out = io.StringIO()
    write_jsonl(records(1), out)
    line = out.getvalue().strip()
    assert set(json.loads(line)) == set(CSV_COLUMNS)
    assert " " not in line.replace("equity below floor", "").replace(" ok", "")


def test_unreadable_lines_are_kept_in_place() -> None:
    out = io.StringIO()
    write_jsonl(records(3), out)
    lines = out.getvalue().splitlines()
    lines[1] = lines[1].replace('"sequence":1', '"sequence":"one"')
    lines.insert(2, "")
    lines.insert(3, "{not json")
    decoded = list(read_jsonl(io.StringIO("\n".join(lines))))
    assert [type(r).__name__ for r in decoded] == ["AuditRecord", "UnreadableRecord", "UnreadableRecord", "AuditRecord"]
    first_bad, second_bad = decoded[1], decoded[2]
    assert isinstance(first_bad, UnreadableRecord)
    assert isinstance(second_bad, UnreadableRecord)
    assert (first_bad.location, first_bad.chain_id, first_bad.sequence) == ("line 2", "acc-main", None)
    assert second_bad.location == "line 4"
    kinds = [str(issue.kind) for issue in verify_chains(decoded)[0].issues]
    assert kinds.count("malformed") == 2


@pytest.mark.parametrize("text", ["not json at all\n", "[1, 2]\n", "\n\n42\n"])
def test_not_an_export(text: str) -> None:
    with pytest.raises(AuditFormatError, match="not a JSON-lines audit export"):
        list(read_jsonl(io.StringIO(text)))


def test_first_line_tampered_but_still_an_object_is_unreadable_not_bad_input() -> None:
    decoded = list(read_jsonl(io.StringIO('{"sequence": 0, "chain_id": "c"}\n')))
    assert isinstance(decoded[0], UnreadableRecord)
    assert (decoded[0].sequence, decoded[0].chain_id) == (0, "c")


def test_csv_export() -> None:
    store = MemoryAuditStore(clock=StepClock())
    store.append(make_entry(1))
    store.append(AuditEntry(kind="manual_reset", account_id="acc-1", actor="=HYPERLINK(1)", reason="-broker outage"))
    out = io.StringIO()
    assert write_csv([r for chain in store.chains() for r in store.scan(chain) if isinstance(r, AuditRecord)], out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    decision = next(row for row in rows if row["kind"] == "decision")
    assert json.loads(decision["rules"])[0]["rule_id"] == "ftmo.max_daily_loss"
    assert decision["recorded_at"] == "2026-05-12T22:00:00.000000Z"
    assert decision["actor"] == ""
    reset = next(row for row in rows if row["kind"] == "manual_reset")
    assert reset["actor"] == "'=HYPERLINK(1)"  # never a live formula in a spreadsheet
    assert reset["reason"] == "'-broker outage"
    assert reset["input"] == ""


def test_columns_round_trip_and_mangled_rows() -> None:
    from signalos_core.audit import RECORD_COLUMNS, record_from_columns, record_to_columns

    record = records(1)[0]
    row = record_to_columns(record)
    assert tuple(row) == RECORD_COLUMNS == CSV_COLUMNS
    assert row["recorded_at"] == "2026-05-12T22:00:00.000000Z"
    assert json.loads(row["rules"])[0]["rule_id"] == "ftmo.max_loss"
    assert all(value is None or isinstance(value, str | int) for value in row.values())
    assert record_from_columns(row) == record
    missing = {key: value for key, value in row.items() if key != "hash"}
    broken = record_from_columns(missing, location="row id 9")
    assert isinstance(broken, UnreadableRecord)
    assert (broken.sequence, broken.chain_id, broken.location) == (0, "acc-main", "row id 9")
    assert "KeyError" in broken.error
