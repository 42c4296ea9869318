"""The tamper-evident audit trail of compliance decisions.

Every decision and enforcement (and every mode change or manual reset) becomes an :class:`AuditRecord` in a
hash chain: each record carries the SHA-256 of its canonical JSON together with the previous record's hash, so
:func:`verify` finds any edited, deleted, inserted or reordered record and says where. Records live in an
:class:`AuditStore` (:class:`SQLiteAuditStore`, :class:`MemoryAuditStore`; the service has its own), can be
queried and exported, and their logged inputs can be :func:`replay`-ed against another profile version.

Usage::

    from signalos_core.audit import AuditEntry, SQLiteAuditStore, verify_store

    with SQLiteAuditStore("audit.db") as store:
        store.append(AuditEntry(kind="decision", account_id="acc-1", chain_id="acc-1", outcome="allowed"))
        assert all(report.ok for report in verify_store(store))

The canonical encoding and the hash are specified in docs/audit.md (and ``_canonical``/``_chain``).
"""

from __future__ import annotations

from signalos_core._errors import AuditError, AuditFormatError, AuditIntegrityError, AuditStoreError
from signalos_core.audit._canonical import canonical_json, canonical_tree, sha256_hex
from signalos_core.audit._chain import ChainHead, compute_hash, seal
from signalos_core.audit._columns import RECORD_COLUMNS, record_from_columns, record_to_columns
from signalos_core.audit._export import CSV_COLUMNS, read_jsonl, write_csv, write_jsonl
from signalos_core.audit._record import (
    DEFAULT_CHAIN,
    FORMAT_VERSION,
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    HashAlgorithm,
    RecordKind,
)
from signalos_core.audit._replay import DecisionDiff, Evaluate, ReplayIssue, ReplayReport, RuleChange, replay
from signalos_core.audit._sqlite import SQLiteAuditStore, is_sqlite_file
from signalos_core.audit._store import (
    MAX_PAGE_SIZE,
    AuditPage,
    AuditQuery,
    AuditStore,
    MemoryAuditStore,
    iter_query,
    matches,
    verify_store,
)
from signalos_core.audit._verify import (
    TamperKind,
    UnreadableRecord,
    VerifyIssue,
    VerifyReport,
    verify,
    verify_chains,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_CHAIN",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "MAX_PAGE_SIZE",
    "RECORD_COLUMNS",
    "AuditEntry",
    "AuditError",
    "AuditFormatError",
    "AuditIntegrityError",
    "AuditPage",
    "AuditQuery",
    "AuditRecord",
    "AuditStore",
    "AuditStoreError",
    "ChainHead",
    "DecisionDiff",
    "Evaluate",
    "HashAlgorithm",
    "MemoryAuditStore",
    "RecordKind",
    "ReplayIssue",
    "ReplayReport",
    "RuleChange",
    "SQLiteAuditStore",
    "TamperKind",
    "UnreadableRecord",
    "VerifyIssue",
    "VerifyReport",
    "canonical_json",
    "canonical_tree",
    "compute_hash",
    "is_sqlite_file",
    "iter_query",
    "matches",
    "read_jsonl",
    "record_from_columns",
    "record_to_columns",
    "replay",
    "seal",
    "sha256_hex",
    "verify",
    "verify_chains",
    "verify_store",
    "write_csv",
    "write_jsonl",
]
