"""One record as flat database columns and back: the layout every SQL store uses (SQLite here, the service's
database too), so a row read back re-encodes to exactly the bytes that were hashed.

Columns are the record's fields in declaration order. Scalars are stored as they are; ``recorded_at`` as its
canonical UTC text (``2026-05-11T22:00:01.000000Z``, which also sorts correctly as text); ``input``, ``rules``
and ``details`` as canonical JSON text (NULL for a null ``input``/``details``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from signalos_core.audit._canonical import canonical_datetime, canonical_json
from signalos_core.audit._record import AuditRecord
from signalos_core.audit._verify import UnreadableRecord

__all__ = ["RECORD_COLUMNS", "record_from_columns", "record_to_columns"]

#: Column names, in order (the record's fields).
RECORD_COLUMNS: tuple[str, ...] = tuple(AuditRecord.__struct_fields__)
_JSON_COLUMNS = frozenset({"input", "rules", "details"})


def record_to_columns(record: AuditRecord) -> dict[str, Any]:
    """The column values of ``record`` (str, int or None each)."""
    row: dict[str, Any] = {}
    for column in RECORD_COLUMNS:
        value = getattr(record, column)
        if column in _JSON_COLUMNS:
            value = None if value is None else canonical_json(value, column).decode("utf-8")
        elif column == "recorded_at":
            value = canonical_datetime(value, column)
        row[column] = value
    return row


def record_from_columns(row: Mapping[str, Any], *, location: str | None = None) -> AuditRecord | UnreadableRecord:
    """Rebuild a record from its columns; a row that no longer decodes (a mangled cell) comes back as an
    :class:`UnreadableRecord` at ``location`` (e.g. ``"row id 12"``) so verification can report it."""
    fields: dict[str, Any] = {}
    try:
        for column in RECORD_COLUMNS:
            value = row[column]
            if column in _JSON_COLUMNS and value is not None:
                value = json.loads(value)
            fields[column] = value
        if isinstance(fields["rules"], list):
            fields["rules"] = tuple(fields["rules"])
        return msgspec.convert(fields, AuditRecord)
    except (KeyError, ValueError, TypeError, msgspec.ValidationError) as exc:
        sequence = row.get("sequence")
        chain = row.get("chain_id")
        return UnreadableRecord(
            error=f"{type(exc).__name__}: {exc}",
            sequence=sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None,
            chain_id=chain if isinstance(chain, str) else None,
            location=location,
        )
