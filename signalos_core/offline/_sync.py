"""The device side of sync: push the outbox, pull outcomes and state, rebase what is still pending.

Rules kept here: actions are pushed in ``seq`` order in batches; a terminal outcome is final and never retried;
a retryable outcome or a transport error reschedules only the affected actions (exponential backoff with full
jitter); a batch the server refuses as a whole (:class:`BatchRefusedError`, a 4xx) is bisected until the
offending action is isolated, which is then recorded as ``rejected:invalid`` with the server's problem detail,
so one bad action never blocks the queue; an action that may have reached the server is never expired or
dropped locally -- only the server can decide it (it dedupes by id). A :class:`DeviceForkError` stops the round:
another installation uses this device id and the user must re-register the device.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import msgspec

from signalos_core._errors import BatchRefusedError, DeviceForkError, SyncTransportError
from signalos_core.offline._actions import ModifyPayload, OpenPayload, SettingsPayload, SettingValue
from signalos_core.offline._outbox import Outbox, OutboxRecord
from signalos_core.offline._protocol import (
    ActionOutcome,
    PullRequest,
    PullResponse,
    PushedAction,
    PushRequest,
    PushResponse,
    ServerState,
)

__all__ = ["Backoff", "LocalView", "PendingItem", "SyncEngine", "SyncSummary", "SyncTransport", "rebase"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class SyncTransport(Protocol):
    """How the engine reaches the server. Implementations raise ``SyncTransportError`` when a call fails."""

    def push(self, request: PushRequest) -> PushResponse:
        """Send one batch; the response has one outcome per action, in order."""
        ...

    def pull(self, request: PullRequest) -> PullResponse:
        """Fetch outcomes after a cursor plus the current state."""
        ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**(n-1))) seconds."""

    base: float = 0.5
    cap: float = 300.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempts + 1``."""
        return rng.uniform(0.0, min(self.cap, self.base * 2.0 ** max(0, attempts - 1)))


class SyncSummary(msgspec.Struct):
    """What one sync round did."""

    pushed: int = 0
    applied: int = 0
    not_applied: int = 0
    retrying: int = 0
    decided_locally: int = 0
    pulled: int = 0
    transport_error: str | None = None
    #: Non-terminal actions left after the round.
    unfinished: int = 0
    #: Actions the server refused as invalid in a whole-batch 4xx, isolated by bisection (also in not_applied).
    refused: int = 0
    #: The server saw another installation use this device id: re-register the device (nothing more is sent).
    device_forked: bool = False

    @property
    def in_sync(self) -> bool:
        """True when nothing is left to send and the last round reached the server."""
        return self.unfinished == 0 and self.transport_error is None


class SyncEngine:
    """Drive one outbox against one transport."""

    def __init__(
        self,
        outbox: Outbox,
        transport: SyncTransport,
        *,
        batch_size: int = 500,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.time,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError(f"batch_size must be within 1..1000, got {batch_size}")
        self._outbox = outbox
        self._transport = transport
        self._batch = batch_size
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._timer = timer
        self._clock = clock or (lambda: datetime.now(UTC))
        self.consecutive_failures = 0

    def sync_once(self) -> SyncSummary:
        """One round: recover, decide locally what never left the device, push everything due, pull."""
        summary = SyncSummary()
        self._outbox.recover_sending()
        summary.decided_locally = self._decide_locally()
        try:
            self._push_all(summary)
            self._pull_all(summary)
        except SyncTransportError as exc:
            summary.transport_error = f"{exc.cause}: {exc}"
            summary.device_forked = isinstance(exc, DeviceForkError)
            self.consecutive_failures += 1
        else:
            self.consecutive_failures = 0
        counts = self._outbox.counts()
        summary.unfinished = counts["pending"] + counts["sending"]
        return summary

    def sync(self, *, max_rounds: int = 10, sleep: Callable[[float], None] = time.sleep) -> SyncSummary:
        """Run rounds until in sync or ``max_rounds``; waits with backoff between rounds that made no progress."""
        summary = SyncSummary()
        for _ in range(max_rounds):
            summary = self.sync_once()
            if summary.in_sync or summary.device_forked:
                break
            if summary.transport_error is not None:
                sleep(self._backoff.delay(self.consecutive_failures, self._rng))
            elif summary.retrying:
                sleep(self._backoff.delay(1, self._rng))
        return summary

    # ------------------------------------------------------------------ internals
    def _decide_locally(self) -> int:
        """Decide what the server can never decide: expiry of actions that never left the device, and dependents
        of actions that were decided here (never delivered, so the server can never apply what depends on them).
        """
        now = self._clock()
        count = 0
        after = 0
        decided_here: dict[uuid.UUID, ActionOutcome] = {}
        while page := self._outbox.local_candidates(after_seq=after, limit=self._batch):
            after = page[-1].action.seq
            decided = []
            for record in page:
                outcome = self._local_outcome(record, now, decided_here)
                if outcome is not None:
                    decided.append(outcome)
                    decided_here[outcome.action_id] = outcome
            if decided:
                count += self._outbox.finish(decided)
            if len(decided_here) > 10 * self._batch:
                decided_here.clear()  # bounded memory: older ones are read back from the outbox when needed
        return count

    def _local_outcome(
        self, record: OutboxRecord, now: datetime, decided_here: dict[uuid.UUID, ActionOutcome]
    ) -> ActionOutcome | None:
        action = record.action
        # The same rule as the server: age (monotonic on this device) against the intended lifetime, so a wall
        # clock that jumps while offline neither expires nor revives anything.
        lifetime = action.expires_at - action.created_at_device
        if not record.maybe_delivered and timedelta(milliseconds=record.age_ms) > lifetime:
            return ActionOutcome(
                action_id=action.action_id,
                seq=action.seq,
                code="expired:ttl",
                message="expired on this device before it could be sent",
                facts={"decided_by": "device", "age_ms": str(record.age_ms)},
                decided_at=now,
            )
        for dependency in action.depends_on:
            dep = decided_here.get(dependency)
            if dep is None:
                dep_record = self._outbox.get(dependency)
                dep = None if dep_record is None else dep_record.outcome
            if dep is None or dep.effective.succeeded:
                continue
            if record.maybe_delivered and dep.facts.get("decided_by") != "device":
                continue  # the server may know better (it may have decided this action already): ask it
            return ActionOutcome(
                action_id=action.action_id,
                seq=action.seq,
                code="rejected:dependency_rejected",
                message=f"action {dependency} was not applied",
                facts={"decided_by": "device", "dependency": str(dependency), "dependency_outcome": dep.code},
                decided_at=now,
            )
        return None

    def _push_all(self, summary: SyncSummary) -> None:
        after = 0
        while page := self._outbox.unfinished(after_seq=after, limit=self._batch):
            after = page[-1].action.seq
            now = self._timer()
            ready = [r for r in page if r.next_attempt_at <= now]
            if ready:
                self._push(ready, summary)

    def _push(self, ready: Sequence[OutboxRecord], summary: SyncSummary) -> None:
        seqs = [r.action.seq for r in ready]
        self._outbox.mark_sending(seqs)
        request = PushRequest(
            device_id=self._outbox.device_id,
            sent_at_device=self._clock(),
            actions=[PushedAction(action=r.action, age_ms=r.age_ms) for r in ready],
        )
        try:
            response = self._call(self._transport.push, request)
            results = response.results
            if [o.action_id for o in results] != [r.action.action_id for r in ready]:
                raise SyncTransportError("push response does not match the batch", ambiguous=True, cause="protocol")
        except BatchRefusedError as exc:
            self._refused(ready, exc, summary)
            return
        except SyncTransportError as exc:
            undelivered = [] if exc.ambiguous else [r.action.seq for r in ready if not r.maybe_delivered]
            self._outbox.mark_retry(
                seqs, error=f"transport:{exc.cause}", next_attempt_at=self._next_at, undelivered=undelivered
            )
            raise
        summary.pushed += len(ready)
        terminal = [o for o in results if o.effective.terminal]
        retry = [o.seq for o in results if not o.effective.terminal]
        self._outbox.finish(terminal)
        for outcome in terminal:
            if outcome.effective.category == "applied":
                summary.applied += 1
            else:
                summary.not_applied += 1
        if retry:
            reasons = {o.seq: o.code for o in results if not o.effective.terminal}
            for seq in retry:
                self._outbox.mark_retry([seq], error=reasons[seq], next_attempt_at=self._next_at)
            summary.retrying += len(retry)

    def _refused(self, ready: Sequence[OutboxRecord], exc: BatchRefusedError, summary: SyncSummary) -> None:
        """Nothing of a refused batch was applied: push each half on its own until the offender stands alone."""
        undelivered = [r.action.seq for r in ready if not r.maybe_delivered]
        self._outbox.mark_retry(
            [r.action.seq for r in ready], error=f"refused:{exc.code}", next_attempt_at=lambda _: 0.0,
            undelivered=undelivered,
        )  # fmt: skip
        if len(ready) > 1:
            middle = len(ready) // 2
            self._push(ready[:middle], summary)
            self._push(ready[middle:], summary)
            return
        action = ready[0].action
        facts = {"decided_by": "device", "http_status": str(exc.status), "problem_code": exc.code}
        if exc.detail:
            facts["problem_detail"] = exc.detail[:500]
        self._outbox.finish([
            ActionOutcome(action_id=action.action_id, seq=action.seq, code="rejected:invalid",
                          message=f"the server refused this action: {exc.detail or exc}", facts=facts,
                          decided_at=self._clock()),
        ])  # fmt: skip
        summary.refused += 1
        summary.not_applied += 1

    def _pull_all(self, summary: SyncSummary) -> None:
        cursor = self._outbox.cursor
        while True:
            request = PullRequest(device_id=self._outbox.device_id, cursor=cursor, limit=self._batch)
            response: PullResponse = self._call(self._transport.pull, request)
            summary.pulled += len(response.outcomes)
            for outcome in response.outcomes:
                if not outcome.effective.terminal:
                    raise SyncTransportError("pull returned a retryable outcome", ambiguous=False, cause="protocol")
            self._outbox.finish(response.outcomes)
            cursor = max(cursor, response.cursor)
            self._outbox.save_pull(cursor, response.state)
            if not response.more:
                return

    def _next_at(self, attempts: int) -> float:
        return self._timer() + self._backoff.delay(attempts, self._rng)

    @staticmethod
    def _call(call: Callable[[_R], _T], request: _R) -> _T:
        try:
            return call(request)
        except SyncTransportError:
            raise
        except (ConnectionError, TimeoutError) as exc:
            # Transports should raise SyncTransportError; a bare network error is treated as ambiguous.
            raise SyncTransportError(str(exc) or type(exc).__name__, ambiguous=True, cause="network") from exc


class PendingItem(msgspec.Struct, frozen=True):
    """A not-yet-decided action as the user should see it over the latest server state."""

    seq: int
    kind: str
    target: str | None
    status: str
    note: str = ""


class LocalView(msgspec.Struct, frozen=True):
    """The server state with the pending actions rebased on top (display only; the server decides)."""

    state: ServerState
    settings: dict[str, SettingValue]
    pending: list[PendingItem]


def rebase(state: ServerState, records: Sequence[OutboxRecord]) -> LocalView:
    """Lay pending actions over ``state``: settings overlay per field, and a note where the server will refuse."""
    settings = dict(state.settings)
    positions = {p.position_id: p for p in state.positions}
    orders = {o.order_id: o for o in state.orders}
    items: list[PendingItem] = []
    for record in records:
        action = record.action
        status = "retrying" if record.attempts else "pending"
        note = ""
        payload = action.payload
        if isinstance(payload, SettingsPayload):
            settings.update(payload.changes)
        elif isinstance(payload, OpenPayload):
            if payload.signal_id is not None and payload.signal_id in state.cancelled_signals:
                note = "the signal was cancelled upstream; the server will reject this"
        elif action.kind in ("modify", "close") and action.target is not None:
            position = positions.get(action.target)
            if position is None:
                note = "position not open on the server (not synced yet, or already closed)"
            elif action.kind == "close" and position.status == "closed":
                note = "already closed; this will be a no-op"
            elif isinstance(payload, ModifyPayload) and position.version != action.expected_version:
                note = f"position is at version {position.version}, you acted on {action.expected_version}"
        elif action.kind == "cancel" and action.target is not None:
            order = orders.get(action.target)
            if order is not None and order.version != action.expected_version:
                note = f"order is {order.status} (version {order.version})"
        items.append(PendingItem(seq=action.seq, kind=action.kind, target=action.target, status=status, note=note))
    return LocalView(state=state, settings=settings, pending=items)
