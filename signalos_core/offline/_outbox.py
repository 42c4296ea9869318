"""The durable local outbox: one SQLite file per device (stdlib ``sqlite3``, WAL).

Durability: every action is inserted and committed before :meth:`Outbox.enqueue` returns. Order intents and
settings commit with ``synchronous=FULL`` (survives power loss); kinds in ``relaxed_kinds`` (default: ``ack``
only, which is idempotent UI state) commit with ``NORMAL`` (survives process crashes, may be lost on power loss).
Mixing is safe because WAL frames are appended in order: the next FULL commit syncs every earlier frame, so no
later action can survive while an earlier one is lost. Sync bookkeeping (outcomes, report) also commits with
NORMAL: if it is lost, the action is pushed again and the server answers ``duplicate`` with the original outcome.
Only the "sending" mark is FULL, because it records that a push may have reached the server.

A corrupt, foreign or locked file raises :class:`~signalos_core.OutboxError`; the file is never recreated or
modified in that case.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import msgspec

from signalos_core._errors import OutboxError
from signalos_core.offline._actions import ORDER_KINDS, Action
from signalos_core.offline._advice import AdvisoryDecision
from signalos_core.offline._protocol import ActionOutcome, ServerState

__all__ = ["Outbox", "OutboxRecord", "ReportEntry"]

ActionState = Literal["pending", "sending", "terminal"]
_APPLICATION_ID: Final = 0x5349474F  # "SIGO": marks the file as a SignalOS outbox
_SCHEMA_VERSION: Final = 1
_HEADER: Final = b"SQLite format 3\x00"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS action (
    seq INTEGER PRIMARY KEY,
    action_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    advisory BLOB,
    created_mono REAL NOT NULL,
    boot_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'terminal')),
    attempts INTEGER NOT NULL DEFAULT 0,
    maybe_delivered INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    outcome TEXT,
    outcome_body BLOB,
    signal_id TEXT,
    lifetime REAL NOT NULL,
    has_deps INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS action_open ON action (seq) WHERE state != 'terminal';
CREATE INDEX IF NOT EXISTS action_signal ON action (signal_id) WHERE signal_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS report (
    seq INTEGER PRIMARY KEY,
    action_id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0
) STRICT;
"""


_INSERT: Final = (
    "INSERT INTO action (seq, action_id, kind, body, advisory, created_mono, boot_id, state, signal_id, lifetime,"
    " has_deps) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
)


class OutboxRecord(msgspec.Struct, frozen=True):
    """One outbox row: the action and its delivery bookkeeping."""

    action: Action
    state: ActionState
    attempts: int
    maybe_delivered: bool
    next_attempt_at: float
    last_error: str | None
    outcome: ActionOutcome | None
    advisory: AdvisoryDecision | None
    age_ms: int


class ReportEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A non-applied action, kept until the user acknowledges it: what, why, and the server's facts."""

    action: Action
    code: str
    message: str
    facts: dict[str, str]
    reported_at: datetime
    acknowledged: bool = False


_action_decoder = msgspec.json.Decoder(Action)
_outcome_decoder = msgspec.json.Decoder(ActionOutcome)
_advisory_decoder = msgspec.json.Decoder(AdvisoryDecision)
_report_decoder = msgspec.json.Decoder(ReportEntry)
_state_decoder = msgspec.json.Decoder(ServerState)


def _boot_id() -> str:
    # CLOCK_MONOTONIC is comparable across processes until reboot; the boot id tells whether it still is.
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:  # pragma: no cover - non-Linux: fall back to wall-clock ages
        return ""


_BOOT_ID: Final = _boot_id()


class Outbox:
    """The device's action queue, sync report and mirror of the server state, in one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device_id: str | None = None,
        busy_timeout: float = 5.0,
        relaxed_kinds: Iterable[str] = ("ack",),
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._monotonic = monotonic
        self._relaxed = frozenset(relaxed_kinds)
        if self._relaxed & ORDER_KINDS:
            raise ValueError(
                f"order intents are always committed with synchronous=FULL: {sorted(self._relaxed & ORDER_KINDS)}"
            )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sync_mode = ""
        _check_header(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}", path=str(self.path)) from exc
        try:
            with self._errors("open"):
                self._open(device_id)
        except BaseException:
            self._db.close()
            raise

    def _open(self, device_id: str | None) -> None:
        db = self._db
        if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise OutboxError(f"outbox {self.path}: cannot enable WAL journaling", path=str(self.path))
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise OutboxError(
                f"outbox {self.path} is corrupt ({'; '.join(problems[:3])}); it was left untouched -- "
                "restore it from a backup or move it aside to start a new queue",
                path=str(self.path),
            )
        self._set_sync("FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0]
            if app_id != _APPLICATION_ID and (app_id != 0 or tables):
                raise OutboxError(f"{self.path} is an SQLite database but not a SignalOS outbox", path=str(self.path))
            db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            stored = self._meta("device_id")
            if stored is None:
                stored = device_id or f"dev-{uuid.uuid4().hex}"
                db.execute("INSERT INTO meta VALUES ('device_id', ?), ('next_seq', '1'), ('cursor', '0')", (stored,))
            elif device_id is not None and device_id != stored:
                raise OutboxError(
                    f"outbox {self.path} belongs to device {stored!r}, not {device_id!r}", path=str(self.path)
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.device_id: str = stored

    # ------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OutboxError:
            raise
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise OutboxError(
                    f"outbox {self.path} is locked by another process (while {doing}); "
                    "close the other SignalOS instance or try again",
                    path=str(self.path),
                ) from exc
            raise OutboxError(f"outbox {self.path} failed while {doing}: {exc}", path=str(self.path)) from exc
        except sqlite3.DatabaseError as exc:
            raise OutboxError(
                f"outbox {self.path} is corrupt or unreadable (while {doing}): {exc}; it was left untouched",
                path=str(self.path),
            ) from exc

    def _set_sync(self, mode: str) -> None:
        if mode != self._sync_mode:
            self._db.execute(f"PRAGMA synchronous = {mode}")
            self._sync_mode = mode

    @contextlib.contextmanager
    def _transaction(self, doing: str, *, durable: bool) -> Iterator[sqlite3.Connection]:
        with self._errors(doing):
            self._set_sync("FULL" if durable else "NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def sync_level(self, kind: str) -> Literal["FULL", "NORMAL"]:
        """The ``synchronous`` level an action of ``kind`` is committed with."""
        return "NORMAL" if kind in self._relaxed else "FULL"

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the file (committed data is already durable)."""
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ enqueue
    def enqueue(
        self,
        kind: str,
        build: Callable[[int], Action],
        *,
        advise: Callable[[Action], AdvisoryDecision | None] | None = None,
    ) -> Action:
        """Assign the next ``seq``, build the action with it, insert and commit; return only once it is durable.

        ``kind`` is given up front because SQLite fixes the sync level before the transaction starts.
        """
        with self._transaction("recording an action", durable=kind not in self._relaxed) as db:
            seq = int(self._meta("next_seq") or "1")
            action = build(seq)
            if action.seq != seq or action.device_id != self.device_id or action.kind != kind:
                raise ValueError("the action must use the kind, seq and device id the outbox assigned")
            advisory = None if advise is None else advise(action)
            db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq + 1),))
            db.execute(_INSERT, self._row(action, advisory))
        return action

    def enqueue_many(self, kind: str, builds: Iterable[Callable[[int], Action]]) -> list[Action]:
        """Record several actions of one kind atomically (all or none), with consecutive seqs, in one commit."""
        actions: list[Action] = []
        with self._transaction("recording actions", durable=kind not in self._relaxed) as db:
            seq = int(self._meta("next_seq") or "1")
            rows = []
            for build in builds:
                action = build(seq)
                if action.seq != seq or action.device_id != self.device_id or action.kind != kind:
                    raise ValueError("the action must use the kind, seq and device id the outbox assigned")
                rows.append(self._row(action, None))
                actions.append(action)
                seq += 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq),))
            db.executemany(_INSERT, rows)
        return actions

    def _row(self, action: Action, advisory: AdvisoryDecision | None) -> tuple[object, ...]:
        body = msgspec.json.encode(action)
        # msgspec checks field constraints (patterns, lengths) only when decoding: decode what is about to be
        # stored, so an action that could not be read back (or pushed) is refused now, not discovered later.
        _action_decoder.decode(body)
        return (
            action.seq,
            str(action.action_id),
            action.kind,
            body,
            None if advisory is None else msgspec.json.encode(advisory),
            self._monotonic(),
            _BOOT_ID,
            getattr(action.payload, "signal_id", None) if action.kind == "open" else None,
            (action.expires_at - action.created_at_device).total_seconds(),
            1 if action.depends_on else 0,
        )

    # ------------------------------------------------------------------ reading
    _COLUMNS: Final = (
        "body, state, attempts, maybe_delivered, next_attempt_at, last_error, outcome_body, advisory, "
        "created_mono, boot_id"
    )

    def _record(self, row: tuple[object, ...]) -> OutboxRecord:
        body, state, attempts, maybe, next_at, error, outcome, advisory, mono, boot = row
        action = _action_decoder.decode(body)  # type: ignore[arg-type]  # BLOB columns come back as bytes
        if boot == _BOOT_ID and _BOOT_ID:
            age = self._monotonic() - float(mono)  # type: ignore[arg-type]  # REAL column
        else:
            age = (self._clock() - action.created_at_device).total_seconds()
        return OutboxRecord(
            action=action,
            state=state,  # type: ignore[arg-type]  # CHECK constraint guarantees the literal
            attempts=int(attempts),  # type: ignore[call-overload]  # INTEGER column
            maybe_delivered=bool(maybe),
            next_attempt_at=float(next_at),  # type: ignore[arg-type]  # REAL column
            last_error=error,  # type: ignore[arg-type]  # TEXT column
            outcome=None if outcome is None else _outcome_decoder.decode(outcome),  # type: ignore[arg-type]
            advisory=None if advisory is None else _advisory_decoder.decode(advisory),  # type: ignore[arg-type]
            age_ms=max(0, int(age * 1000)),
        )

    def get(self, action_id: uuid.UUID) -> OutboxRecord | None:
        """One action by id, whatever its state."""
        with self._errors("reading"):
            row = self._db.execute(
                f"SELECT {self._COLUMNS} FROM action WHERE action_id = ?",  # noqa: S608 - constant column list
                (str(action_id),),
            ).fetchone()
        return None if row is None else self._record(row)

    def open_for_signal(self, signal_id: str) -> OutboxRecord | None:
        """The latest open action recorded for an upstream signal (to target its position or order)."""
        with self._errors("reading"):
            row = self._db.execute(
                f"SELECT {self._COLUMNS} FROM action WHERE signal_id = ?"  # noqa: S608 - constant column list
                " ORDER BY seq DESC LIMIT 1",
                (signal_id,),
            ).fetchone()
        return None if row is None else self._record(row)

    def unfinished(self, *, after_seq: int = 0, limit: int = 500) -> list[OutboxRecord]:
        """One keyset page of non-terminal actions with ``seq > after_seq``, ascending."""
        with self._errors("reading"):
            rows = self._db.execute(
                f"SELECT {self._COLUMNS} FROM action WHERE state != 'terminal' AND seq > ?"  # noqa: S608 - constant
                " ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [self._record(row) for row in rows]

    def local_candidates(self, *, after_seq: int = 0, limit: int = 500) -> list[OutboxRecord]:
        """A page of actions the device may decide itself: never delivered and possibly expired, or with dependencies.

        The age test runs in SQL (monotonic clock, same boot) so a large healthy queue is not decoded each round.
        """
        with self._errors("reading"):
            rows = self._db.execute(
                f"SELECT {self._COLUMNS} FROM action WHERE state != 'terminal' AND seq > ?"  # noqa: S608 - constant
                " AND (has_deps = 1 OR (maybe_delivered = 0 AND (boot_id != ? OR ? - created_mono > lifetime)))"
                " ORDER BY seq LIMIT ?",
                (after_seq, _BOOT_ID, self._monotonic(), limit),
            ).fetchall()
        return [self._record(row) for row in rows]

    def iter_unfinished(self, *, page: int = 500) -> Iterator[OutboxRecord]:
        """Every non-terminal action in ``seq`` order, ``page`` rows in memory at a time."""
        after = 0
        while batch := self.unfinished(after_seq=after, limit=page):
            yield from batch
            after = batch[-1].action.seq

    def counts(self) -> dict[str, int]:
        """How many actions are in each state."""
        with self._errors("reading"):
            rows = self._db.execute("SELECT state, count(*) FROM action GROUP BY state").fetchall()
        return {"pending": 0, "sending": 0, "terminal": 0} | {str(s): int(n) for s, n in rows}

    # ------------------------------------------------------------------ sync bookkeeping
    def mark_sending(self, seqs: Iterable[int]) -> None:
        """Record (durably) that these actions are about to be pushed: from now on they may be delivered."""
        with self._transaction("marking actions as sending", durable=True) as db:
            db.executemany(
                "UPDATE action SET state = 'sending', maybe_delivered = 1 WHERE seq = ? AND state != 'terminal'",
                ((seq,) for seq in seqs),
            )

    def recover_sending(self) -> int:
        """After a crash mid-push: put 'sending' actions back to pending (still flagged maybe-delivered)."""
        with self._transaction("recovering interrupted pushes", durable=False) as db:
            return db.execute("UPDATE action SET state = 'pending' WHERE state = 'sending'").rowcount

    def mark_retry(
        self,
        seqs: Iterable[int],
        *,
        error: str,
        next_attempt_at: Callable[[int], float],
        undelivered: Iterable[int] = (),
    ) -> None:
        """Back to pending after a retryable outcome or a transport error; ``next_attempt_at(attempts)``.

        ``undelivered``: actions the failed push certainly did not deliver (refused before sending) and that were
        never sent before; they may again be decided locally.
        """
        with self._transaction("scheduling a retry", durable=False) as db:
            db.executemany("UPDATE action SET maybe_delivered = 0 WHERE seq = ?", ((seq,) for seq in undelivered))
            for seq in seqs:
                row = db.execute("SELECT attempts FROM action WHERE seq = ? AND state != 'terminal'", (seq,)).fetchone()
                if row is not None:
                    attempts = int(row[0]) + 1
                    db.execute(
                        "UPDATE action SET state = 'pending', attempts = ?, last_error = ?, next_attempt_at = ?"
                        " WHERE seq = ?",
                        (attempts, error, next_attempt_at(attempts), seq),
                    )

    def finish(self, outcomes: Iterable[ActionOutcome]) -> int:
        """Make actions terminal with their outcome; non-applied ones go to the report. Returns how many changed.

        Outcomes for actions that are unknown or already terminal are ignored (pull and push may both carry one).
        """
        now = self._clock()
        with self._transaction("recording outcomes", durable=False) as db:
            todo = {str(o.action_id): o for o in self._only_unfinished(db, outcomes)}
            db.executemany(
                "UPDATE action SET state = 'terminal', outcome = ?, outcome_body = ? WHERE action_id = ?",
                [(o.effective.code, msgspec.json.encode(o), key) for key, o in todo.items()],
            )
            failed = [key for key, o in todo.items() if o.effective.category != "applied"]
            for start in range(0, len(failed), 500):
                chunk = failed[start : start + 500]
                rows = db.execute(
                    f"SELECT seq, action_id, body FROM action WHERE action_id IN ({','.join('?' * len(chunk))})",  # noqa: S608 - only placeholders
                    chunk,
                ).fetchall()
                for seq, key, body in rows:
                    outcome = todo[key]
                    entry = ReportEntry(
                        action=_action_decoder.decode(body),
                        code=outcome.effective.code,
                        message=outcome.message,
                        facts=dict(outcome.facts),
                        reported_at=now,
                    )
                    db.execute(
                        "INSERT OR IGNORE INTO report (seq, action_id, body) VALUES (?, ?, ?)",
                        (seq, key, msgspec.json.encode(entry)),
                    )
        return len(todo)

    @staticmethod
    def _only_unfinished(db: sqlite3.Connection, outcomes: Iterable[ActionOutcome]) -> list[ActionOutcome]:
        """Drop outcomes for actions already terminal with one query per chunk (pulls repeat what pushes told)."""
        wanted = list(outcomes)
        keep: set[str] = set()
        for start in range(0, len(wanted), 500):
            ids = [str(o.action_id) for o in wanted[start : start + 500]]
            marks = ",".join("?" * len(ids))
            keep.update(
                row[0]
                for row in db.execute(
                    f"SELECT action_id FROM action WHERE state != 'terminal' AND action_id IN ({marks})",  # noqa: S608 - only placeholders
                    ids,
                )
            )
        return [o for o in wanted if str(o.action_id) in keep]

    # ------------------------------------------------------------------ mirror of the server
    @property
    def cursor(self) -> int:
        """The pull cursor (server outcome-log position) already applied."""
        with self._errors("reading"):
            return int(self._meta("cursor") or "0")

    def server_state(self) -> ServerState:
        """The last server state pulled (empty before the first pull)."""
        with self._errors("reading"):
            raw = self._meta("state")
        return ServerState() if raw is None else _state_decoder.decode(raw)

    def save_pull(self, cursor: int, state: ServerState) -> None:
        """Store the new cursor and server state together."""
        with self._transaction("saving the server state", durable=False) as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'cursor'", (str(cursor),))
            db.execute(
                "INSERT INTO meta VALUES ('state', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (msgspec.json.encode(state).decode(),),
            )

    # ------------------------------------------------------------------ the report
    def report(self, *, include_acknowledged: bool = False) -> list[ReportEntry]:
        """Every action that was not applied, oldest first, until acknowledged."""
        query = "SELECT body, acknowledged FROM report"
        if not include_acknowledged:
            query += " WHERE acknowledged = 0"
        with self._errors("reading the report"):
            rows = self._db.execute(query + " ORDER BY seq").fetchall()
        return [msgspec.structs.replace(_report_decoder.decode(b), acknowledged=bool(a)) for b, a in rows]

    def acknowledge_report(self, action_ids: Iterable[uuid.UUID] | None = None) -> int:
        """Mark report entries as seen (all when ``action_ids`` is None); returns how many changed."""
        with self._transaction("acknowledging the report", durable=True) as db:
            if action_ids is None:
                return db.execute("UPDATE report SET acknowledged = 1 WHERE acknowledged = 0").rowcount
            return sum(
                db.execute(
                    "UPDATE report SET acknowledged = 1 WHERE action_id = ? AND acknowledged = 0", (str(i),)
                ).rowcount
                for i in action_ids
            )


def _check_header(path: Path) -> None:
    """Refuse a non-empty file that is not SQLite before sqlite3 touches it (it would otherwise fail later)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutboxError(f"cannot read outbox {path}: {exc}", path=str(path)) from exc
    if header and header != _HEADER:
        raise OutboxError(
            f"{path} is not an SQLite outbox (bad header); it was left untouched -- move it aside to start anew",
            path=str(path),
        )
