"""A :class:`~signalos_core.offline.ServerStore` in one SQLite file (stdlib ``sqlite3``).

For self-hosted single-node servers, embedded use and benchmarks; the HTTP service keeps the same records in
its own database. ``atomic()`` is one ``BEGIN IMMEDIATE`` transaction, so an action's outcome row commits
together with the settings/ack rows it changed (the execution provider is outside; it dedupes by client
order id, and the server reconciles with it before deciding again).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec

from signalos_core._errors import OfflineError
from signalos_core.offline._actions import SettingValue
from signalos_core.offline._protocol import ActionOutcome

__all__ = ["SQLiteServerStore"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS client_action (
    server_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS client_action_device ON client_action (user_id, device_id, server_seq);
CREATE TABLE IF NOT EXISTS action_seen (
    user_id TEXT NOT NULL, action_id TEXT NOT NULL, first_seen TEXT NOT NULL, PRIMARY KEY (user_id, action_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_setting (
    user_id TEXT NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (user_id, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cancelled_signal (
    user_id TEXT NOT NULL, signal_id TEXT NOT NULL, PRIMARY KEY (user_id, signal_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_seq (
    user_id TEXT NOT NULL, device_id TEXT NOT NULL, seq INTEGER NOT NULL, action_id TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acknowledgement (
    user_id TEXT NOT NULL, subject TEXT NOT NULL, PRIMARY KEY (user_id, subject)
) WITHOUT ROWID;
"""
_outcome_decoder = msgspec.json.Decoder(ActionOutcome)
_value_decoder = msgspec.json.Decoder(bool | int | str | None)


def _decode(body: bytes, server_seq: int) -> ActionOutcome:
    return msgspec.structs.replace(_outcome_decoder.decode(body), server_seq=int(server_seq))


class SQLiteServerStore:
    """Server-side sync records in SQLite (WAL; ``synchronous=FULL`` by default: a decided record is durable)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OfflineError(f"cannot open server store {self.path}: {exc}") from exc
        self._depth = 0

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (re-entrant: nested uses join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self._db.execute("COMMIT")

    def outcome(self, user_id: str, action_id: uuid.UUID) -> tuple[ActionOutcome, str] | None:
        """See :meth:`ServerStore.outcome`."""
        row = self._db.execute(
            "SELECT body, digest, server_seq FROM client_action WHERE action_id = ? AND user_id = ?",
            (str(action_id), user_id),
        ).fetchone()
        return None if row is None else (_decode(row[0], row[2]), str(row[1]))

    def record(self, user_id: str, device_id: str, outcome: ActionOutcome, digest: str) -> ActionOutcome:
        """See :meth:`ServerStore.record` (the unique action id makes a second record fail loudly)."""
        # The body is stored without server_seq (the row's own key supplies it on read): one statement per record.
        body = msgspec.json.encode(msgspec.structs.replace(outcome, server_seq=None))
        with self.atomic():
            server_seq = self._db.execute(
                "INSERT INTO client_action (action_id, user_id, device_id, digest, body) VALUES (?, ?, ?, ?, ?)"
                " RETURNING server_seq",
                (str(outcome.action_id), user_id, device_id, digest, body),
            ).fetchone()[0]
        return msgspec.structs.replace(outcome, server_seq=int(server_seq))

    def outcomes_since(self, user_id: str, device_id: str, cursor: int, limit: int) -> list[ActionOutcome]:
        """See :meth:`ServerStore.outcomes_since`."""
        rows = self._db.execute(
            "SELECT body, server_seq FROM client_action WHERE user_id = ? AND device_id = ? AND server_seq > ?"
            " ORDER BY server_seq LIMIT ?",
            (user_id, device_id, cursor, limit),
        ).fetchall()
        return [_decode(body, seq) for body, seq in rows]

    def first_seen(self, user_id: str, action_id: uuid.UUID, now: datetime) -> datetime:
        """See :meth:`ServerStore.first_seen`."""
        with self.atomic():
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO action_seen VALUES (?, ?, ?)", (user_id, str(action_id), now.isoformat())
            ).rowcount
            if inserted:
                return now
            row = self._db.execute(
                "SELECT first_seen FROM action_seen WHERE user_id = ? AND action_id = ?", (user_id, str(action_id))
            ).fetchone()
        return datetime.fromisoformat(row[0])

    def settings(self, user_id: str) -> dict[str, SettingValue]:
        """See :meth:`ServerStore.settings`."""
        rows = self._db.execute("SELECT field, value FROM account_setting WHERE user_id = ?", (user_id,))
        return {str(field): _value_decoder.decode(value) for field, value in rows}

    def set_settings(self, user_id: str, changes: Mapping[str, SettingValue]) -> None:
        """See :meth:`ServerStore.set_settings`."""
        with self.atomic():
            self._db.executemany(
                "INSERT INTO account_setting VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value",
                [(user_id, field, msgspec.json.encode(value)) for field, value in changes.items()],
            )

    def cancelled_signals(self, user_id: str) -> frozenset[str]:
        """See :meth:`ServerStore.cancelled_signals`."""
        rows = self._db.execute("SELECT signal_id FROM cancelled_signal WHERE user_id = ?", (user_id,))
        return frozenset(str(row[0]) for row in rows)

    def cancel_signal(self, user_id: str, signal_id: str) -> None:
        """An upstream channel cancelled a signal."""
        with self.atomic():
            self._db.execute("INSERT OR IGNORE INTO cancelled_signal VALUES (?, ?)", (user_id, signal_id))

    def record_ack(self, user_id: str, subject: str) -> None:
        """See :meth:`ServerStore.record_ack`."""
        with self.atomic():
            self._db.execute("INSERT OR IGNORE INTO acknowledgement VALUES (?, ?)", (user_id, subject))

    def claim_seq(self, user_id: str, device_id: str, seq: int, action_id: uuid.UUID) -> uuid.UUID:
        """See :meth:`ServerStore.claim_seq`."""
        with self.atomic():
            claimed = self._db.execute(
                "INSERT OR IGNORE INTO device_seq VALUES (?, ?, ?, ?)", (user_id, device_id, seq, str(action_id))
            ).rowcount
            if claimed:  # the common case (a new action): one statement
                return action_id
            row = self._db.execute(
                "SELECT action_id FROM device_seq WHERE user_id = ? AND device_id = ? AND seq = ?",
                (user_id, device_id, seq),
            ).fetchone()
        return uuid.UUID(row[0])

    def acks(self, user_id: str) -> frozenset[str]:
        """Acknowledged subjects."""
        rows = self._db.execute("SELECT subject FROM acknowledgement WHERE user_id = ?", (user_id,))
        return frozenset(str(row[0]) for row in rows)
