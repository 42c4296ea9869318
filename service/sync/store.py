"""The sync server's records in the service database, read and written per *batch*, not per action.

:class:`BatchServerStore` implements :class:`signalos_core.offline.ServerStore` for one user and one pushed
batch: everything the library may read (the recorded outcomes of the batch's actions and of their
dependencies, first-seen times, settings, cancelled signals, acks) is loaded with a handful of queries up front,
the library decides in memory, and :meth:`BatchServerStore.flush` writes every change with bulk statements in
the same transaction. A statement per action through the async driver cost ~1 ms each; a batch costs ~10.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from service.sync.models import (
    sync_ack,
    sync_action_seen,
    sync_cancelled_signal,
    sync_client_action,
    sync_device_seq,
    sync_setting,
)
from signalos_core.offline import AckPayload, ActionOutcome, DecodedPush, InvalidAction, PushedAction, SettingValue

__all__ = ["BatchServerStore"]

_outcome_decoder = msgspec.json.Decoder(ActionOutcome)
_value_decoder = msgspec.json.Decoder(bool | int | str | None)
_CHUNK = 500  # bound on IN (...) lists


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class BatchServerStore:
    """One user's sync records for one request; call :meth:`flush` before the transaction commits."""

    def __init__(self, session: Session, user_id: uuid.UUID, batch: DecodedPush | None = None) -> None:
        self._session = session
        self._user = user_id
        self._outcomes: dict[uuid.UUID, tuple[ActionOutcome, str]] = {}
        self._seen: dict[uuid.UUID, datetime] = {}
        self._acks: set[str] = set()
        self._new_outcomes: list[tuple[str, ActionOutcome, str]] = []
        self._new_seen: dict[uuid.UUID, datetime] = {}
        self._new_acks: set[str] = set()
        self._changed_settings: set[str] = set()
        self._seqs: dict[tuple[str, int], uuid.UUID] = {}
        self._new_seqs: dict[tuple[str, int], uuid.UUID] = {}
        self._settings: dict[str, SettingValue] = {
            row.field: _value_decoder.decode(row.value)
            for row in session.execute(
                select(sync_setting.c.field, sync_setting.c.value).where(sync_setting.c.user_id == user_id)
            )
        }
        self._cancelled = frozenset(
            session.execute(
                select(sync_cancelled_signal.c.signal_id).where(sync_cancelled_signal.c.user_id == user_id)
            ).scalars()
        )
        if batch is not None:
            self._preload(batch)

    def _preload(self, batch: DecodedPush) -> None:
        actions = [item.action for item in batch.items if isinstance(item, PushedAction)]
        ids = {a.action_id for a in actions} | {i.action_id for i in batch.items if isinstance(i, InvalidAction)}
        wanted = sorted(str(i) for i in ids | {d for action in actions for d in action.depends_on})
        seqs = sorted(i.seq if isinstance(i, InvalidAction) else i.action.seq for i in batch.items)
        for start in range(0, len(seqs), _CHUNK):
            for row in self._session.execute(
                select(sync_device_seq.c.seq, sync_device_seq.c.action_id)
                .where(sync_device_seq.c.device_id == batch.device_id, sync_device_seq.c.seq.in_(seqs[start : start + _CHUNK]))
            ):  # fmt: skip
                self._seqs[(batch.device_id, int(row.seq))] = uuid.UUID(row.action_id)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for row in self._session.execute(
                select(sync_client_action.c.body, sync_client_action.c.digest, sync_client_action.c.server_seq)
                .where(sync_client_action.c.user_id == self._user, sync_client_action.c.action_id.in_(chunk))
            ):  # fmt: skip
                outcome = msgspec.structs.replace(_outcome_decoder.decode(row.body), server_seq=int(row.server_seq))
                self._outcomes[outcome.action_id] = (outcome, row.digest)
            for row in self._session.execute(
                select(sync_action_seen.c.action_id, sync_action_seen.c.first_seen)
                .where(sync_action_seen.c.user_id == self._user, sync_action_seen.c.action_id.in_(chunk))
            ):  # fmt: skip
                self._seen[uuid.UUID(row.action_id)] = _aware(row.first_seen)
        subjects = sorted({a.payload.subject for a in actions if isinstance(a.payload, AckPayload)})
        for start in range(0, len(subjects), _CHUNK):
            self._acks.update(
                self._session.execute(
                    select(sync_ack.c.subject).where(
                        sync_ack.c.user_id == self._user, sync_ack.c.subject.in_(subjects[start : start + _CHUNK])
                    )
                ).scalars()
            )

    def _check(self, user_id: str) -> None:
        if user_id != str(self._user):  # one store serves one user; anything else is a programming error
            raise ValueError(f"store for {self._user} used for {user_id}")

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """The request transaction is the unit: the handler commits on success and rolls back on any error."""
        yield

    def outcome(self, user_id: str, action_id: uuid.UUID) -> tuple[ActionOutcome, str] | None:
        """See the ServerStore protocol (answers for the batch's actions and their dependencies)."""
        self._check(user_id)
        return self._outcomes.get(action_id)

    def record(self, user_id: str, device_id: str, outcome: ActionOutcome, digest: str) -> ActionOutcome:
        """Remember the outcome; ``server_seq`` is assigned by :meth:`flush` (the UNIQUE action id guards it)."""
        self._check(user_id)
        if outcome.action_id in self._outcomes:
            raise ValueError(f"action {outcome.action_id} already has an outcome")
        self._outcomes[outcome.action_id] = (outcome, digest)
        self._new_outcomes.append((device_id, outcome, digest))
        return outcome

    def outcomes_since(self, user_id: str, device_id: str, cursor: int, limit: int) -> list[ActionOutcome]:
        """See the ServerStore protocol (read straight from the database: pulls are one query)."""
        self._check(user_id)
        rows = self._session.execute(
            select(sync_client_action.c.body, sync_client_action.c.server_seq)
            .where(sync_client_action.c.user_id == self._user, sync_client_action.c.device_id == device_id,
                   sync_client_action.c.server_seq > cursor)
            .order_by(sync_client_action.c.server_seq)
            .limit(limit)
        ).all()  # fmt: skip
        return [msgspec.structs.replace(_outcome_decoder.decode(r.body), server_seq=int(r.server_seq)) for r in rows]

    def first_seen(self, user_id: str, action_id: uuid.UUID, now: datetime) -> datetime:
        """See the ServerStore protocol."""
        self._check(user_id)
        if action_id not in self._seen:
            self._seen[action_id] = self._new_seen[action_id] = now
        return self._seen[action_id]

    def settings(self, user_id: str) -> dict[str, SettingValue]:
        """See the ServerStore protocol."""
        self._check(user_id)
        return dict(self._settings)

    def set_settings(self, user_id: str, changes: Mapping[str, SettingValue]) -> None:
        """See the ServerStore protocol (last writer wins per field, in this batch's order)."""
        self._check(user_id)
        self._settings.update(changes)
        self._changed_settings.update(changes)

    def cancelled_signals(self, user_id: str) -> frozenset[str]:
        """See the ServerStore protocol."""
        self._check(user_id)
        return self._cancelled

    def record_ack(self, user_id: str, subject: str) -> None:
        """See the ServerStore protocol."""
        self._check(user_id)
        if subject not in self._acks:
            self._acks.add(subject)
            self._new_acks.add(subject)

    def claim_seq(self, user_id: str, device_id: str, seq: int, action_id: uuid.UUID) -> uuid.UUID:
        """See the ServerStore protocol (the batch's seqs were preloaded; new claims are written by flush)."""
        self._check(user_id)
        key = (device_id, seq)
        if key not in self._seqs:
            self._seqs[key] = self._new_seqs[key] = action_id
        return self._seqs[key]

    def flush(self) -> dict[uuid.UUID, int]:
        """Write every change of the batch; returns the ``server_seq`` assigned to each recorded action."""
        session, uid, now = self._session, self._user, datetime.now(UTC)
        if self._new_seen:
            session.execute(insert(sync_action_seen), [
                {"user_id": uid, "action_id": str(a), "first_seen": t} for a, t in self._new_seen.items()
            ])  # fmt: skip
        for field in sorted(self._changed_settings):
            value = msgspec.json.encode(self._settings[field]).decode()
            statement = update(sync_setting).where(sync_setting.c.user_id == uid, sync_setting.c.field == field)
            if not session.execute(statement.values(value=value)).rowcount:  # type: ignore[attr-defined]
                session.execute(insert(sync_setting).values(user_id=uid, field=field, value=value))
        if self._new_seqs:
            session.execute(insert(sync_device_seq), [
                {"device_id": d, "seq": q, "action_id": str(a)} for (d, q), a in self._new_seqs.items()
            ])  # fmt: skip
        if self._new_acks:
            session.execute(insert(sync_ack), [{"user_id": uid, "subject": s, "acked_at": now} for s in self._new_acks])
        seqs: dict[uuid.UUID, int] = {}
        if self._new_outcomes:
            rows = [
                {"action_id": str(o.action_id), "user_id": uid, "device_id": device, "digest": digest, "code": o.code,
                 "body": msgspec.json.encode(o).decode(), "created_at": now}
                for device, o, digest in self._new_outcomes
            ]  # fmt: skip
            # Bulk insert; the order of server_seq inside one batch does not matter (the device applies outcomes in
            # any order, and every decision was already taken in batch order above).
            returned = session.execute(
                insert(sync_client_action).returning(
                    sync_client_action.c.action_id, sync_client_action.c.server_seq, sort_by_parameter_order=True
                ),
                rows,
            )
            seqs = {uuid.UUID(r.action_id): int(r.server_seq) for r in returned}
        self._new_seen.clear()
        self._new_acks.clear()
        self._new_seqs.clear()
        self._changed_settings.clear()
        self._new_outcomes.clear()
        return seqs
