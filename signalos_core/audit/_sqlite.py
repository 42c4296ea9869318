"""The SQLite audit store (stdlib ``sqlite3``): durable, safe with several threads and processes appending.

Every column of a record is stored as its canonical value (times as canonical UTC text, JSON fields as canonical
JSON text), so a row read back re-encodes to exactly the bytes that were hashed and any raw SQL edit shows up.
The database runs in WAL mode with ``synchronous=FULL`` (a committed record survives power loss); an append is
one ``BEGIN IMMEDIATE`` transaction that reads the chain head, writes the record and moves the head, so two
writers queue on the write lock instead of forking the chain. ``audit_heads`` doubles as the verification
anchor: deleting the last records or appending forged ones without also moving the head is detected.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from signalos_core._errors import AuditStoreError
from signalos_core.audit._canonical import canonical_datetime
from signalos_core.audit._chain import ChainHead, seal
from signalos_core.audit._columns import RECORD_COLUMNS, record_from_columns, record_to_columns
from signalos_core.audit._record import GENESIS_HASH, AuditEntry, AuditRecord
from signalos_core.audit._store import AuditPage, AuditQuery, Clock, utc_now
from signalos_core.audit._verify import UnreadableRecord

__all__ = ["SQLiteAuditStore", "is_sqlite_file"]

_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    format INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    account_id TEXT,
    profile_id TEXT,
    profile_version TEXT,
    profile_hash TEXT,
    backend TEXT,
    input_digest TEXT,
    input TEXT,
    outcome TEXT,
    rules TEXT NOT NULL,
    actor TEXT,
    reason TEXT,
    details TEXT,
    hash_alg TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (chain_id, sequence)
) STRICT;
CREATE INDEX IF NOT EXISTS audit_records_account ON audit_records (account_id, id);
CREATE INDEX IF NOT EXISTS audit_records_chain ON audit_records (chain_id, id);
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (recorded_at, id);
CREATE INDEX IF NOT EXISTS audit_records_outcome ON audit_records (outcome, id);
CREATE TABLE IF NOT EXISTS audit_heads (
    chain_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
"""
_INSERT = f"INSERT INTO audit_records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"  # noqa: S608 - constants only
_SCAN_BATCH = 500
_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` starts with the SQLite database header."""
    with open(path, "rb") as handle:
        return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _from_row(row: sqlite3.Row) -> AuditRecord | UnreadableRecord:
    return record_from_columns({key: row[key] for key in row.keys()}, location=f"row id {row['id']}")  # noqa: SIM118 - sqlite3.Row has no items()


class SQLiteAuditStore:
    """An :class:`~signalos_core.audit.AuditStore` in a SQLite file.

    ``key`` makes new records HMAC-keyed (keep it outside the database). ``readonly`` opens an existing store
    without ever writing (what ``signalos audit verify`` does). ``timeout`` is how long an append waits for
    another writer before failing with :class:`AuditStoreError`. Use as a context manager or call
    :meth:`close`. One instance may be shared by threads; processes each open their own.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        key: bytes | None = None,
        clock: Clock = utc_now,
        readonly: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._key = key
        self._clock = clock
        self._readonly = readonly
        self._lock = threading.RLock()
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
            else:
                self._conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
            self._conn.isolation_level = None  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if readonly:
                self._check_schema()
            else:
                self._setup()
        except sqlite3.Error as exc:
            raise AuditStoreError(f"{self.path}: cannot open audit store: {exc}", path=str(self.path)) from exc

    def _setup(self) -> None:
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        # One script, one write transaction: two processes creating the same file concurrently both succeed.
        meta = f"INSERT OR IGNORE INTO audit_meta (key, value) VALUES ('schema_version', '{_SCHEMA_VERSION}');"  # noqa: S608 - a constant
        self._conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + meta + "COMMIT;")
        self._check_schema()

    def _check_schema(self) -> None:
        row = (
            self._conn.execute("SELECT value FROM audit_meta WHERE key = 'schema_version'").fetchone()
            if self._has_table("audit_meta")
            else None
        )
        if row is None or row[0] != _SCHEMA_VERSION or not self._has_table("audit_records"):
            raise AuditStoreError(
                f"{self.path}: not a SignalOS audit store (schema v{_SCHEMA_VERSION})", path=str(self.path)
            )

    def _has_table(self, name: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row is not None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteAuditStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Seal ``entry`` as the next record of its chain in one ``BEGIN IMMEDIATE`` transaction."""
        if self._readonly:
            raise AuditStoreError(f"{self.path}: cannot append: the store was opened read-only", path=str(self.path))
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise AuditStoreError(f"{self.path}: cannot append: {exc}", path=str(self.path)) from exc
            try:
                row = self._conn.execute(
                    "SELECT sequence, hash FROM audit_heads WHERE chain_id = ?", (entry.chain_id,)
                ).fetchone()
                sequence, prev_hash = (row[0] + 1, row[1]) if row else (0, GENESIS_HASH)
                record = seal(entry, sequence=sequence, prev_hash=prev_hash, recorded_at=self._clock(), key=self._key)
                self._conn.execute(_INSERT, list(record_to_columns(record).values()))
                self._conn.execute(
                    "INSERT INTO audit_heads (chain_id, sequence, hash) VALUES (?, ?, ?) "
                    "ON CONFLICT (chain_id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash",
                    (record.chain_id, record.sequence, record.hash),
                )
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise AuditStoreError(f"{self.path}: cannot append: {exc}", path=str(self.path)) from exc
                raise
        return record

    def head(self, chain_id: str) -> ChainHead | None:
        """The head recorded in ``audit_heads`` for ``chain_id`` (the verification anchor)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT sequence, hash FROM audit_heads WHERE chain_id = ?", (chain_id,)
            ).fetchone()
        if row is None or not isinstance(row[0], int) or not isinstance(row[1], str):
            return None
        return ChainHead(chain_id=chain_id, sequence=row[0], hash=row[1])

    def chains(self) -> list[str]:
        """Every chain id with records or a head, sorted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT chain_id FROM audit_records UNION SELECT chain_id FROM audit_heads ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def scan(self, chain_id: str) -> Iterator[AuditRecord | UnreadableRecord]:
        """Rows of ``chain_id`` in append (row id) order, fetched in batches without holding the lock."""
        last_id = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT * FROM audit_records WHERE chain_id = ? AND id > ? ORDER BY id LIMIT ?",
                    (chain_id, last_id, _SCAN_BATCH),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _from_row(row)
            last_id = rows[-1]["id"]

    def query(self, query: AuditQuery) -> AuditPage:
        """One page of matching records (keyset pagination on the row id)."""
        where: list[str] = []
        params: list[Any] = []
        for column in ("chain_id", "account_id", "kind", "outcome"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.rule_id is not None:
            # CASE short-circuits, so a tampered (invalid JSON) rules cell cannot make the whole query fail.
            where.append(
                "CASE WHEN json_valid(rules) THEN EXISTS (SELECT 1 FROM json_each(audit_records.rules) AS r "
                "WHERE json_extract(r.value, '$.rule_id') = ?) ELSE 0 END"
            )
            params.append(query.rule_id)
        if query.since is not None:
            where.append("recorded_at >= ?")
            params.append(canonical_datetime(query.since))
        if query.until is not None:
            where.append("recorded_at < ?")
            params.append(canonical_datetime(query.until))
        position = query.cursor_position()
        if position is not None:
            where.append("id < ?" if query.newest_first else "id > ?")
            params.append(position)
        sql = "SELECT * FROM audit_records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id {'DESC' if query.newest_first else 'ASC'} LIMIT ?"
        params.append(query.limit + 1)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        items = []
        for row in rows:
            record = _from_row(row)
            if isinstance(record, UnreadableRecord):
                raise AuditStoreError(
                    f"{self.path}: {record.location} is unreadable: {record.error}", path=str(self.path)
                )
            items.append(record)
        return AuditPage(items=tuple(items), next_cursor=str(rows[-1]["id"]) if more else None)
