"""Server-side sync logic, pure of any web framework: apply pushed batches, answer pulls.

The HTTP service is a thin shell around :class:`SyncServer`; it supplies a :class:`ServerStore` (its database),
an :class:`~signalos_core.offline.ExecutionProvider` and a :class:`ComplianceAdvisor` holding the profile
*current at apply time*. Rules, in the order they are checked for each action:

1. at most once: an action id already decided returns ``duplicate`` with the original outcome;
2. expiry on server time: the age is the larger of the device-reported age (clamped at zero) and the time since
   the server first saw the action; the lifetime is ``expires_at - created_at_device`` capped by
   :attr:`ServerPolicy.max_ttl` -- device clocks are never compared with the server's;
3. dependencies: all must have succeeded (``applied``/``noop``), else ``rejected:dependency_rejected``;
4. per kind: reconcile with the provider by client order id first, then signal cancelled, compliance, price
   deviation, target version; a close of a closed position is ``noop:already_closed``.

Terminal outcomes are recorded (inside ``store.atomic()``, with the effect) and advance the device's cursor;
retryable ones are not recorded and are decided afresh next time. Before anything is applied, every action's
``seq`` is claimed for its device (:meth:`ServerStore.claim_seq`): a different action at a used seq means a second
installation uses the device id, and the whole batch raises ``DeviceForkError``. Actions that could not be
decoded (:func:`~signalos_core.offline.decode_push`) are recorded as ``rejected:invalid`` or
``rejected:client_upgrade_required`` without being applied.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

import msgspec

from signalos_core._errors import BatchRefusedError, DeviceForkError, ExecutionUnavailableError
from signalos_core.offline._actions import (
    Action,
    ActionKind,
    CancelPayload,
    ModifyPayload,
    OpenPayload,
    SettingsPayload,
    SettingValue,
    client_order_id,
    close_order_id,
    order_id_for,
    position_id_for,
)
from signalos_core.offline._advice import AccountView, ComplianceAdvisor
from signalos_core.offline._paper import ExecutionProvider, OrderRequest
from signalos_core.offline._protocol import (
    ActionOutcome,
    Outcome,
    PullRequest,
    PullResponse,
    PushedAction,
    PushRequest,
    PushResponse,
    ServerState,
    decimal_text,
)
from signalos_core.offline._wire import DecodedPush, InvalidAction, decode_push

__all__ = ["LocalTransport", "ServerPolicy", "ServerStore", "SyncServer", "action_digest"]

_Decision = tuple[str, str, dict[str, str]]
_V = TypeVar("_V")


def _default_ttls() -> dict[ActionKind, timedelta]:
    return {
        "open": timedelta(hours=1),
        "modify": timedelta(hours=1),
        "close": timedelta(days=1),
        "cancel": timedelta(days=1),
        "settings": timedelta(days=30),
        "ack": timedelta(days=90),
    }


@dataclass(frozen=True)
class ServerPolicy:
    """Server limits: the longest lifetime honoured per kind, and the clock skew beyond which it is flagged."""

    max_ttl: Mapping[ActionKind, timedelta] = field(default_factory=_default_ttls)
    clock_skew_bound: timedelta = timedelta(minutes=2)


class ServerStore(Protocol):
    """What the sync server needs from its database (one user account at a time)."""

    def atomic(self) -> AbstractContextManager[None]:
        """A transaction: the effect and the recorded outcome of one action commit together or not at all."""
        ...

    def outcome(self, user_id: str, action_id: uuid.UUID) -> tuple[ActionOutcome, str] | None:
        """The recorded outcome of an action and the digest of its content, if decided."""
        ...

    def record(self, user_id: str, device_id: str, outcome: ActionOutcome, digest: str) -> ActionOutcome:
        """Record a terminal outcome; returns it with its ``server_seq`` assigned."""
        ...

    def outcomes_since(self, user_id: str, device_id: str, cursor: int, limit: int) -> list[ActionOutcome]:
        """This device's outcomes with ``server_seq > cursor``, ascending, at most ``limit``."""
        ...

    def first_seen(self, user_id: str, action_id: uuid.UUID, now: datetime) -> datetime:
        """When the server first received this action (recording ``now`` if this is the first time)."""
        ...

    def settings(self, user_id: str) -> dict[str, SettingValue]:
        """The account's settings."""
        ...

    def set_settings(self, user_id: str, changes: Mapping[str, SettingValue]) -> None:
        """Overwrite the given fields (last writer wins per field, in server order)."""
        ...

    def cancelled_signals(self, user_id: str) -> frozenset[str]:
        """Signals cancelled upstream."""
        ...

    def record_ack(self, user_id: str, subject: str) -> None:
        """Remember an acknowledgement."""
        ...

    def claim_seq(self, user_id: str, device_id: str, seq: int, action_id: uuid.UUID) -> uuid.UUID:
        """The action holding ``seq`` of this device: ``action_id`` if the seq was free (now claimed), else the
        action that claimed it first (a different one means a second installation uses the device id)."""
        ...


def action_digest(action: Action) -> str:
    """A digest of an action's content: the same id pushed with different content is refused."""
    return hashlib.sha256(msgspec.json.encode(action)).hexdigest()


class SyncServer:
    """Apply pushes and answer pulls for one deployment (any number of users, one store and provider)."""

    def __init__(
        self,
        store: ServerStore,
        provider: ExecutionProvider,
        compliance: ComplianceAdvisor,
        *,
        policy: ServerPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._provider = provider
        self._compliance = compliance
        self._policy = policy or ServerPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))

    def push(self, user_id: str, request: PushRequest | DecodedPush) -> PushResponse:
        """Apply a batch in order; one outcome per action. The caller has checked the device is the user's.

        Raises :class:`~signalos_core.offline.DeviceForkError` (nothing applied) when a ``seq`` of this device
        is already held by a different action: another installation is using the device id.
        """
        batch = request if isinstance(request, DecodedPush) else DecodedPush.of(request)
        # One transaction per batch (each action's record and effect sit inside it); a crash mid-batch rolls the
        # records back and the resend reconciles with the provider by client order id.
        with self._store.atomic():
            self._check_fork(user_id, batch)
            results = [
                self._reject(user_id, item) if isinstance(item, InvalidAction) else self._apply(user_id, batch, item)
                for item in batch.items
            ]
        return PushResponse(device_id=batch.device_id, server_time=self._clock(), results=results)

    def push_body(self, user_id: str, body: bytes) -> PushResponse:
        """Decode a JSON push body action by action (see :func:`decode_push`) and apply it; an envelope that
        cannot be answered per action raises ``msgspec.ValidationError``/``DecodeError`` naming the field."""
        return self.push(user_id, decode_push(body))

    def _check_fork(self, user_id: str, batch: DecodedPush) -> None:
        for item in batch.items:
            action_id, seq = (item.action_id, item.seq) if isinstance(item, InvalidAction) else (
                item.action.action_id, item.action.seq)  # fmt: skip
            holder = self._store.claim_seq(user_id, batch.device_id, seq, action_id)
            if holder != action_id:
                raise DeviceForkError(
                    f"device {batch.device_id} already used seq {seq} for another action ({holder}): another "
                    "installation is using this device id; re-register this device under a new id",
                    device_id=batch.device_id,
                    seq=seq,
                )

    def pull(self, user_id: str, request: PullRequest) -> PullResponse:
        """This device's outcomes after the cursor (paged) plus the current account state."""
        rows = self._store.outcomes_since(user_id, request.device_id, request.cursor, request.limit + 1)
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        cursor = rows[-1].server_seq if rows and rows[-1].server_seq is not None else request.cursor
        return PullResponse(
            device_id=request.device_id,
            cursor=cursor,
            more=more,
            outcomes=rows,
            state=self.state(user_id),
            server_time=self._clock(),
        )

    def state(self, user_id: str) -> ServerState:
        """The account state devices converge to."""
        positions, orders = self._provider.snapshot(user_id)
        return ServerState(
            positions=positions,
            orders=orders,
            settings=dict(sorted(self._store.settings(user_id).items())),
            cancelled_signals=sorted(self._store.cancelled_signals(user_id)),
        )

    # ------------------------------------------------------------------ one action
    def _reject(self, user_id: str, item: InvalidAction) -> ActionOutcome:
        """An action that could not be decoded: recorded as decided (its seq is used), never applied."""
        now = self._clock()
        outcome = ActionOutcome(
            action_id=item.action_id,
            seq=item.seq,
            code=item.code,
            message=item.message,
            facts={"field": item.field} if item.field else {},
            decided_at=now,
        )
        with self._store.atomic():
            prior = self._store.outcome(user_id, item.action_id)
            if prior is not None:
                original, prior_digest = prior
                if prior_digest != item.digest:
                    return msgspec.structs.replace(outcome, code="rejected:invalid",
                                                   message="action id reused with different content", facts={})  # fmt: skip
                return msgspec.structs.replace(original, code="duplicate", original_code=original.code)
            self._store.first_seen(user_id, item.action_id, now)
            return self._store.record(user_id, item.device_id, outcome, item.digest)

    def _apply(self, user_id: str, request: DecodedPush, item: PushedAction) -> ActionOutcome:
        action = item.action
        now = self._clock()
        digest = action_digest(action)
        with self._store.atomic():
            prior = self._store.outcome(user_id, action.action_id)
            if prior is not None:
                original, prior_digest = prior
                if prior_digest != digest:
                    # Not recorded: the id keeps its original outcome; this push is answered but changes nothing.
                    return self._outcome(action, "rejected:invalid", "action id reused with different content", {})
                return msgspec.structs.replace(original, code="duplicate", original_code=original.code)
            first_seen = self._store.first_seen(user_id, action.action_id, now)
            try:
                code, message, facts = self._decide(user_id, item, first_seen, now)
            except ExecutionUnavailableError as exc:
                code, message, facts = "retryable:provider_unavailable", str(exc), {}
            skew = request.sent_at_device - now
            if abs(skew) > self._policy.clock_skew_bound:
                facts["clock_skew_ms"] = str(int(skew / timedelta(milliseconds=1)))
            outcome = self._outcome(action, code, message, facts, decided_at=now)
            if not Outcome.parse(code).terminal:
                return outcome
            return self._store.record(user_id, action.device_id, outcome, digest)

    @staticmethod
    def _outcome(
        action: Action, code: str, message: str, facts: dict[str, str], *, decided_at: datetime | None = None
    ) -> ActionOutcome:
        return ActionOutcome(
            action_id=action.action_id, seq=action.seq, code=code, message=message, facts=facts, decided_at=decided_at
        )

    def _decide(self, user_id: str, item: PushedAction, first_seen: datetime, now: datetime) -> _Decision:
        action = item.action
        lifetime = min(action.expires_at - action.created_at_device, self._policy.max_ttl[action.kind])
        age = max(timedelta(milliseconds=item.age_ms), now - first_seen)
        if age > lifetime:
            return (
                "expired:ttl",
                "the action expired before it reached the server",
                {
                    "age_ms": str(int(age / timedelta(milliseconds=1))),
                    "lifetime_ms": str(int(lifetime / timedelta(milliseconds=1))),
                    "server_time": now.isoformat(),
                },
            )
        for dependency in action.depends_on:
            recorded = self._store.outcome(user_id, dependency)
            if recorded is None:
                return (
                    "retryable:dependency_pending",
                    f"waiting for action {dependency}",
                    {"dependency": str(dependency)},
                )
            if not recorded[0].effective.succeeded:
                return (
                    "rejected:dependency_rejected",
                    f"action {dependency} was not applied",
                    {
                        "dependency": str(dependency),
                        "dependency_outcome": recorded[0].code,
                    },
                )
        payload = action.payload
        if isinstance(payload, OpenPayload):
            return self._open(user_id, action, payload)
        if isinstance(payload, ModifyPayload):
            return self._modify(user_id, action, payload)
        if isinstance(payload, CancelPayload):
            return self._cancel(user_id, action)
        if isinstance(payload, SettingsPayload):
            self._store.set_settings(user_id, payload.changes)
            return "applied", "settings changed", {"fields": ",".join(sorted(payload.changes))}
        if action.kind == "close":
            return self._close(user_id, action)
        self._store.record_ack(user_id, getattr(payload, "subject", ""))
        return "applied", "acknowledged", {}

    def _open(self, user_id: str, action: Action, payload: OpenPayload) -> _Decision:
        provider = self._provider
        coid = client_order_id(action.action_id)
        placed = provider.find_order(user_id, coid)
        if placed is not None:
            # The order reached the provider before (a crash between effect and record): never place it again.
            return "applied", "order already at the provider (reconciled)", _order_facts(placed) | {"reconciled": "1"}
        if payload.signal_id is not None and payload.signal_id in self._store.cancelled_signals(user_id):
            return (
                "rejected:signal_cancelled",
                f"signal {payload.signal_id} was cancelled",
                {"signal_id": payload.signal_id},
            )
        settings = self._store.settings(user_id)
        if settings.get("paused") is True:
            # A safety setting is state read at apply time: a pause that landed first stops every later open.
            return "rejected:compliance:paused", "copying is paused for this account", {"rule_id": "paused"}
        positions, orders = provider.snapshot(user_id)
        view = AccountView(settings=settings, positions=positions, orders=orders)
        decision = self._compliance.advise(action, view)
        if not decision.allowed:
            rule = _rule_code(decision.rule_id)
            return f"rejected:compliance:{rule}", decision.reason, {"rule_id": rule}
        if payload.order_type == "market":
            price = provider.quote(user_id, payload.symbol)
            if price is None:
                return "retryable:no_price", f"no current price for {payload.symbol}", {}
            ref_price, max_deviation = _need(action.ref_price), _need(action.max_deviation)
            if abs(price - ref_price) > max_deviation:
                return (
                    "rejected:price_moved",
                    "the price moved beyond the allowed deviation",
                    {
                        "current_price": decimal_text(price),
                        "ref_price": decimal_text(ref_price),
                        "max_deviation": decimal_text(max_deviation),
                    },
                )
        order = provider.place_order(
            user_id,
            OrderRequest(
                client_order_id=coid,
                order_id=order_id_for(action.action_id),
                position_id=position_id_for(action.action_id),
                symbol=payload.symbol,
                side=payload.side,
                volume=payload.volume,
                order_type=payload.order_type,
                limit_price=payload.limit_price,
                stop_loss=payload.stop_loss,
                take_profit=payload.take_profit,
                signal_id=payload.signal_id,
            ),
        )
        return "applied", f"order {order.status}", _order_facts(order)

    def _modify(self, user_id: str, action: Action, payload: ModifyPayload) -> _Decision:
        target = _need(action.target)
        position = self._provider.position(user_id, target)
        if position is None:
            return "rejected:invalid", f"unknown position {target}", {"target": target}
        if position.status != "open" or position.version != action.expected_version:
            return "rejected:target_changed", "the position changed since you acted on it", _position_facts(position)
        updated = self._provider.modify_position(
            user_id, position.position_id, stop_loss=payload.stop_loss, take_profit=payload.take_profit
        )
        return "applied", "position modified", _position_facts(updated)

    def _close(self, user_id: str, action: Action) -> _Decision:
        target = _need(action.target)
        coid = close_order_id(action.action_id)
        if self._provider.find_order(user_id, coid) is not None:
            position = self._provider.position(user_id, target)
            facts = _position_facts(position) if position is not None else {}
            return "applied", "close already at the provider (reconciled)", facts | {"reconciled": "1"}
        position = self._provider.position(user_id, target)
        if position is None:
            return "rejected:invalid", f"unknown position {target}", {"target": target}
        if position.status == "closed":
            return "noop:already_closed", f"already closed ({position.close_reason})", _position_facts(position)
        closed = self._provider.close_position(user_id, position.position_id, client_order_id=coid)
        return "applied", "position closed", _position_facts(closed)

    def _cancel(self, user_id: str, action: Action) -> _Decision:
        target = _need(action.target)
        order = self._provider.order(user_id, target)
        if order is None:
            return "rejected:invalid", f"unknown order {target}", {"target": target}
        if order.status != "working" or order.version != action.expected_version:
            return "rejected:target_changed", f"the order is {order.status}", _order_facts(order)
        return "applied", "order cancelled", _order_facts(self._provider.cancel_order(user_id, order.order_id))


_RULE_UNSAFE = re.compile(r"[^a-z0-9_.-]")


def _rule_code(rule_id: str | None) -> str:
    """A compliance rule id as it appears in ``rejected:compliance:<rule-id>`` (lower case, safe characters)."""
    code = _RULE_UNSAFE.sub("_", (rule_id or "unspecified").lower())[:64]
    return code if code[:1].isalnum() else f"r{code}"[:64]


def _need(value: _V | None) -> _V:
    """Narrow a field the Action validator guarantees for this kind."""
    if value is None:  # pragma: no cover - Action.__post_init__ makes this unreachable
        raise ValueError("missing field the action kind requires")
    return value


def _order_facts(order: msgspec.Struct) -> dict[str, str]:
    return {k: _fact(v) for k, v in msgspec.structs.asdict(order).items() if v is not None}


def _position_facts(position: msgspec.Struct) -> dict[str, str]:
    return _order_facts(position)


def _fact(value: object) -> str:
    return decimal_text(value) if isinstance(value, Decimal) else str(value)


class LocalTransport:
    """A :class:`~signalos_core.offline.SyncTransport` calling a :class:`SyncServer` in the same process.

    For embedded single-process setups, demos and tests. Messages go through the JSON wire format (encode, then
    decode with the strict types) so it checks exactly what an HTTP transport would carry.
    """

    def __init__(self, server: SyncServer, user_id: str) -> None:
        self._server = server
        self._user_id = user_id

    def push(self, request: PushRequest) -> PushResponse:
        """Apply a batch on the server."""
        try:
            response = self._server.push_body(self._user_id, msgspec.json.encode(request))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            # What the HTTP service answers 400: the whole batch is refused, nothing applied.
            raise BatchRefusedError(
                f"batch refused: {exc}", status=400, code="validation_error", detail=str(exc)
            ) from exc
        return msgspec.json.decode(msgspec.json.encode(response), type=PushResponse)

    def pull(self, request: PullRequest) -> PullResponse:
        """Pull outcomes and state from the server."""
        wire = msgspec.json.decode(msgspec.json.encode(request), type=PullRequest)
        response = self._server.pull(self._user_id, wire)
        return msgspec.json.decode(msgspec.json.encode(response), type=PullResponse)
