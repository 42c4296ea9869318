"""The public API of ``signalos_core.audit`` is exactly its curated ``__all__``."""

from __future__ import annotations

from signalos_core import audit

EXPECTED = {
    "CSV_COLUMNS", "DEFAULT_CHAIN", "FORMAT_VERSION", "GENESIS_HASH", "MAX_PAGE_SIZE", "RECORD_COLUMNS",
    "AuditEntry", "AuditError", "AuditFormatError", "AuditIntegrityError", "AuditPage", "AuditQuery",
    "AuditRecord", "AuditStore", "AuditStoreError", "ChainHead", "DecisionDiff", "Evaluate", "HashAlgorithm",
    "MemoryAuditStore", "RecordKind", "ReplayIssue", "ReplayReport", "RuleChange", "SQLiteAuditStore",
    "TamperKind", "UnreadableRecord", "VerifyIssue", "VerifyReport",
    "canonical_json", "canonical_tree", "compute_hash", "is_sqlite_file", "iter_query", "matches", "read_jsonl",
    "record_from_columns", "record_to_columns",
    "replay", "seal", "sha256_hex", "verify", "verify_chains", "verify_store", "write_csv", "write_jsonl",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(audit.__all__) == EXPECTED
    assert len(audit.__all__) == len(EXPECTED), "no duplicates in __all__"


def test_every_name_resolves_and_public_items_are_documented() -> None:
    for name in audit.__all__:
        value = getattr(audit, name)
        if callable(value) and not name.isupper() and name != "Evaluate":
            assert value.__doc__, f"{name} has no docstring"


def test_errors_are_the_shared_tree() -> None:
    import signalos_core._errors as errors

    assert audit.AuditIntegrityError is errors.AuditIntegrityError
    assert issubclass(audit.AuditFormatError, ValueError)
    assert issubclass(audit.AuditStoreError, OSError)
    assert issubclass(audit.AuditFormatError, errors.SignalOSError)
