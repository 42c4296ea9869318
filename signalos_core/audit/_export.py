"""Export audit records as JSON lines or CSV, and read a JSON-lines export back for verification.

A JSON-lines export is one canonical JSON object per line, every field including ``hash``, in append order: it
verifies on its own (``signalos audit verify export.jsonl``). CSV is for spreadsheets: one row per record, the
columns of docs/audit.md, JSON fields as canonical JSON text, an empty cell for null; a text cell that starts
with ``=``, ``+``, ``-`` or ``@`` gets a leading apostrophe so a spreadsheet does not run it as a formula.
CSV is not meant to be verified (spreadsheets rewrite cells).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO

import msgspec

from signalos_core._errors import AuditFormatError
from signalos_core.audit._canonical import canonical_json
from signalos_core.audit._record import AuditRecord
from signalos_core.audit._verify import UnreadableRecord

__all__ = ["CSV_COLUMNS", "read_jsonl", "write_csv", "write_jsonl"]

#: CSV header, in order (the record's fields).
CSV_COLUMNS: tuple[str, ...] = tuple(AuditRecord.__struct_fields__)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_DECODER = msgspec.json.Decoder(AuditRecord)
_ANY_DECODER = msgspec.json.Decoder()


def write_jsonl(records: Iterable[AuditRecord], stream: IO[str]) -> int:
    """Write each record as one canonical JSON line; returns how many were written."""
    count = 0
    for record in records:
        stream.write(canonical_json(record.to_json_dict(), "record").decode("utf-8"))
        stream.write("\n")
        count += 1
    return count


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return canonical_json(value).decode("utf-8")
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def write_csv(records: Iterable[AuditRecord], stream: IO[str]) -> int:
    """Write a header and one CSV row per record; returns how many records were written."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        tree = record.to_json_dict()
        writer.writerow([_cell(tree[column]) for column in CSV_COLUMNS])
        count += 1
    return count


def read_jsonl(stream: IO[str]) -> Iterator[AuditRecord | UnreadableRecord]:
    """Decode a JSON-lines export line by line; a line that is not a valid record becomes an
    :class:`UnreadableRecord` (so verification reports where it is) and blank lines are skipped.

    Raises AuditFormatError if the first non-blank line is not a JSON object at all (not an audit export).
    """
    seen_record = False
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record: AuditRecord | UnreadableRecord = _DECODER.decode(line)
            seen_record = True
        except msgspec.DecodeError as exc:
            if not seen_record:
                _refuse_if_not_json_object(line, number, exc)
            record = _unreadable(line, number, exc)
        yield record


def _refuse_if_not_json_object(line: str, number: int, exc: Exception) -> None:
    try:
        value = _ANY_DECODER.decode(line)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise AuditFormatError(f"line {number}: not a JSON-lines audit export ({exc})", field=f"line {number}")


def _unreadable(line: str, number: int, exc: Exception) -> UnreadableRecord:
    sequence: int | None = None
    chain_id: str | None = None
    try:
        value = _ANY_DECODER.decode(line)
    except msgspec.DecodeError:
        value = None
    if isinstance(value, dict):
        raw_sequence, raw_chain = value.get("sequence"), value.get("chain_id")
        sequence = raw_sequence if isinstance(raw_sequence, int) and not isinstance(raw_sequence, bool) else None
        chain_id = raw_chain if isinstance(raw_chain, str) else None
    return UnreadableRecord(error=str(exc), sequence=sequence, chain_id=chain_id, location=f"line {number}")
