"""An in-memory :class:`~signalos_core.offline.ServerStore` (tests, benchmarks, single-process demos)."""

from __future__ import annotations

import bisect
import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from signalos_core.offline._actions import SettingValue
from signalos_core.offline._protocol import ActionOutcome

__all__ = ["InMemoryServerStore"]


@dataclass
class _UserData:
    outcomes: dict[uuid.UUID, tuple[ActionOutcome, str]] = field(default_factory=dict)
    by_device: dict[str, tuple[list[int], list[ActionOutcome]]] = field(default_factory=dict)
    seen: dict[uuid.UUID, datetime] = field(default_factory=dict)
    settings: dict[str, SettingValue] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    acks: set[str] = field(default_factory=set)
    seqs: dict[tuple[str, int], uuid.UUID] = field(default_factory=dict)


class InMemoryServerStore:
    """A :class:`ServerStore` in memory (tests, benchmarks, single-process demos). Not thread-safe.

    ``atomic()`` keeps an undo log, so an exception inside it rolls every change back like a database would.
    """

    def __init__(self) -> None:
        self._users: dict[str, _UserData] = {}
        self._next_seq = 1
        self._undo: list[Callable[[], None]] | None = None

    def _user(self, user_id: str) -> _UserData:
        return self._users.setdefault(user_id, _UserData())

    def _on_rollback(self, undo: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(undo)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction (re-entrant: nested uses join the outer one)."""
        if self._undo is not None:
            yield
            return
        self._undo = []
        try:
            yield
        except BaseException:
            for undo in reversed(self._undo):
                undo()
            raise
        finally:
            self._undo = None

    def outcome(self, user_id: str, action_id: uuid.UUID) -> tuple[ActionOutcome, str] | None:
        """See :meth:`ServerStore.outcome`."""
        return self._user(user_id).outcomes.get(action_id)

    def record(self, user_id: str, device_id: str, outcome: ActionOutcome, digest: str) -> ActionOutcome:
        """See :meth:`ServerStore.record`."""
        user = self._user(user_id)
        if outcome.action_id in user.outcomes:
            raise ValueError(f"action {outcome.action_id} already has an outcome")
        stored = msgspec.structs.replace(outcome, server_seq=self._next_seq)
        self._next_seq += 1
        user.outcomes[outcome.action_id] = (stored, digest)
        keys, rows = user.by_device.setdefault(device_id, ([], []))
        keys.append(self._next_seq - 1)
        rows.append(stored)

        def undo() -> None:
            del user.outcomes[outcome.action_id]
            keys.pop()
            rows.pop()

        self._on_rollback(undo)
        return stored

    def outcomes_since(self, user_id: str, device_id: str, cursor: int, limit: int) -> list[ActionOutcome]:
        """See :meth:`ServerStore.outcomes_since`."""
        keys, rows = self._user(user_id).by_device.get(device_id, ([], []))
        start = bisect.bisect_right(keys, cursor)
        return rows[start : start + limit]

    def first_seen(self, user_id: str, action_id: uuid.UUID, now: datetime) -> datetime:
        """See :meth:`ServerStore.first_seen`."""
        seen = self._user(user_id).seen
        if action_id not in seen:
            seen[action_id] = now

            def undo() -> None:
                del seen[action_id]

            self._on_rollback(undo)
        return seen[action_id]

    def settings(self, user_id: str) -> dict[str, SettingValue]:
        """See :meth:`ServerStore.settings`."""
        return dict(self._user(user_id).settings)

    def set_settings(self, user_id: str, changes: Mapping[str, SettingValue]) -> None:
        """See :meth:`ServerStore.set_settings`."""
        current = self._user(user_id).settings
        before = {k: current[k] for k in changes if k in current}
        current.update(changes)

        def undo() -> None:
            for key in changes:
                current.pop(key, None)
            current.update(before)

        self._on_rollback(undo)

    def cancelled_signals(self, user_id: str) -> frozenset[str]:
        """See :meth:`ServerStore.cancelled_signals`."""
        return frozenset(self._user(user_id).cancelled)

    def cancel_signal(self, user_id: str, signal_id: str) -> None:
        """An upstream channel cancelled a signal (server-side change)."""
        self._user(user_id).cancelled.add(signal_id)

    def record_ack(self, user_id: str, subject: str) -> None:
        """See :meth:`ServerStore.record_ack`."""
        acks = self._user(user_id).acks
        if subject not in acks:
            acks.add(subject)
            self._on_rollback(lambda: acks.discard(subject))

    def claim_seq(self, user_id: str, device_id: str, seq: int, action_id: uuid.UUID) -> uuid.UUID:
        """See :meth:`ServerStore.claim_seq`."""
        seqs = self._user(user_id).seqs
        key = (device_id, seq)
        if key not in seqs:
            seqs[key] = action_id

            def undo() -> None:
                del seqs[key]

            self._on_rollback(undo)
        return seqs[key]

    def acks(self, user_id: str) -> frozenset[str]:
        """Acknowledged subjects."""
        return frozenset(self._user(user_id).acks)
