"""The offline client: everything a user does is recorded durably in the outbox before the call returns.

It needs no server. Incoming signal messages are parsed with the injected :class:`SignalParser` and checked
with the injected :class:`ComplianceAdvisor` (the account's cached profile; advisory only -- the server checks
again with the profile current when it applies the action).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import msgspec

from signalos_core.offline._actions import (
    AckPayload,
    Action,
    ActionKind,
    CancelPayload,
    ClosePayload,
    ModifyPayload,
    OpenPayload,
    Payload,
    SettingsPayload,
    SettingValue,
    Side,
    order_id_for,
    position_id_for,
)
from signalos_core.offline._advice import AccountView, AdvisoryDecision, ComplianceAdvisor, SignalIntent, SignalParser
from signalos_core.offline._outbox import Outbox, ReportEntry
from signalos_core.offline._sync import LocalView, rebase

__all__ = ["ClientPolicy", "OfflineClient", "ReceiveResult"]


def _default_ttls() -> dict[ActionKind, timedelta]:
    # Opens go stale fast (the price moves); closes stay wanted much longer; settings and acks longer still.
    return {
        "open": timedelta(minutes=2),
        "modify": timedelta(minutes=10),
        "close": timedelta(hours=1),
        "cancel": timedelta(hours=1),
        "settings": timedelta(days=7),
        "ack": timedelta(days=30),
    }


@dataclass(frozen=True)
class ClientPolicy:
    """Defaults the client fills in: lifetime per kind, allowed price deviation, default volume for signals."""

    ttl: Mapping[ActionKind, timedelta] = field(default_factory=_default_ttls)
    #: Market opens may fill within ``ref_price * deviation_fraction`` of the price the user saw.
    deviation_fraction: Decimal = Decimal("0.002")
    default_volume: Decimal | None = None


class ReceiveResult(msgspec.Struct, frozen=True):
    """What a received message produced: recorded actions (with advisories) and intents skipped, with why."""

    actions: list[Action]
    advisories: list[AdvisoryDecision | None]
    skipped: list[tuple[SignalIntent, str]]


class OfflineClient:
    """Record user actions in an :class:`Outbox`; works with no server at all."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        parser: SignalParser | None = None,
        advisor: ComplianceAdvisor | None = None,
        policy: ClientPolicy | None = None,
        quotes: Callable[[str], Decimal | None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.outbox = outbox
        self._parser = parser
        self._advisor = advisor
        self._policy = policy or ClientPolicy()
        self._quotes = quotes
        self._clock = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ recording
    def _record(
        self,
        kind: ActionKind,
        payload: Payload,
        *,
        ttl: timedelta | None = None,
        ref_price: Decimal | None = None,
        max_deviation: Decimal | None = None,
        target: str | None = None,
        expected_version: int | None = None,
        depends_on: Iterable[uuid.UUID] = (),
    ) -> Action:
        now = self._clock()
        lifetime = ttl if ttl is not None else self._policy.ttl[kind]
        action_id = uuid.uuid4()
        deps = tuple(dict.fromkeys(depends_on))

        def build(seq: int) -> Action:
            return Action(
                action_id=action_id,
                device_id=self.outbox.device_id,
                seq=seq,
                kind=kind,
                created_at_device=now,
                expires_at=now + lifetime,
                payload=payload,
                ref_price=ref_price,
                max_deviation=max_deviation,
                target=target,
                expected_version=expected_version,
                depends_on=deps,
            )

        advise = self._advise if kind == "open" and self._advisor is not None else None
        return self.outbox.enqueue(kind, build, advise=advise)

    def _advise(self, action: Action) -> AdvisoryDecision | None:
        if self._advisor is None:  # pragma: no cover - only passed when an advisor exists
            return None
        state = self.outbox.server_state()
        return self._advisor.advise(action, AccountView(settings=self.view().settings, positions=state.positions))

    def open(
        self,
        symbol: str,
        side: Side,
        volume: Decimal,
        *,
        ref_price: Decimal | None = None,
        max_deviation: Decimal | None = None,
        order_type: Literal["market", "limit"] = "market",
        limit_price: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        signal_id: str | None = None,
        ttl: timedelta | None = None,
    ) -> Action:
        """Record an open intent. A market open needs ``ref_price`` (the price you saw; never 'at any price')."""
        if order_type == "market" and ref_price is not None and max_deviation is None:
            max_deviation = ref_price * self._policy.deviation_fraction
        payload = OpenPayload(
            symbol=symbol,
            side=side,
            volume=volume,
            order_type=order_type,
            limit_price=limit_price,
            stop_loss=stop_loss,
            take_profit=take_profit,
            signal_id=signal_id,
        )
        return self._record("open", payload, ttl=ttl, ref_price=ref_price, max_deviation=max_deviation)

    def modify(
        self,
        position_id: str,
        *,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        expected_version: int | None = None,
        ttl: timedelta | None = None,
    ) -> Action:
        """Record new SL/TP for a position (``expected_version`` defaults to the version you see locally)."""
        version, deps = self._target(position_id, expected_version, orders=False, chain=True)
        payload = ModifyPayload(stop_loss=stop_loss, take_profit=take_profit)
        return self._record("modify", payload, ttl=ttl, target=position_id, expected_version=version, depends_on=deps)

    def close(self, position_id: str, *, expected_version: int | None = None, ttl: timedelta | None = None) -> Action:
        """Record a targeted close of a position (a no-op on the server if it is already closed)."""
        version, deps = self._target(position_id, expected_version, orders=False)
        return self._record(
            "close", ClosePayload(), ttl=ttl, target=position_id, expected_version=version, depends_on=deps
        )

    def cancel(self, order_id: str, *, expected_version: int | None = None, ttl: timedelta | None = None) -> Action:
        """Record the cancellation of a working (limit) order."""
        version, deps = self._target(order_id, expected_version, orders=True)
        return self._record(
            "cancel", CancelPayload(), ttl=ttl, target=order_id, expected_version=version, depends_on=deps
        )

    def set_settings(self, changes: Mapping[str, SettingValue | Decimal], *, ttl: timedelta | None = None) -> Action:
        """Record settings changes (merged last-writer-wins per field on the server); Decimals are stored as text."""
        values = {k: format(v, "f") if isinstance(v, Decimal) else v for k, v in changes.items()}
        return self._record("settings", SettingsPayload(changes=values), ttl=ttl)

    def acknowledge(self, subject: str, *, ttl: timedelta | None = None) -> Action:
        """Record that the user acknowledged ``subject`` (a signal or notification id)."""
        return self._record("ack", AckPayload(subject=subject), ttl=ttl)

    def _target(
        self, target: str, expected: int | None, *, orders: bool, chain: bool = False
    ) -> tuple[int, list[uuid.UUID]]:
        """The version to expect and the local open to depend on, for a position or order id."""
        deps: list[uuid.UUID] = []
        prefix = "ord-" if orders else "pos-"
        if target.startswith(prefix):
            try:
                open_id = uuid.UUID(hex=target[len(prefix) :])
            except ValueError:
                open_id = None
            record = None if open_id is None else self.outbox.get(open_id)
            if record is not None and (record.outcome is None or record.outcome.effective.category != "applied"):
                deps.append(record.action.action_id)
        # Our own pending modifies of this position apply first, each raising its version by one: expect that,
        # and depend on the last of them so a rejected one does not leave this one acting on a stale version.
        pending = [] if not chain else [
            r.action for r in self.outbox.iter_unfinished() if r.action.target == target and r.action.kind == "modify"
        ]  # fmt: skip
        if pending:
            deps.append(pending[-1].action_id)
        if expected is not None:
            return expected, deps
        state = self.outbox.server_state()
        views: Sequence[msgspec.Struct] = state.orders if orders else state.positions
        base = next(
            (
                int(v.version)  # type: ignore[attr-defined]  # both view types have it
                for v in views
                if getattr(v, "order_id" if orders else "position_id") == target
            ),
            None,
        )
        if base is None and not deps:
            raise ValueError(f"unknown {'order' if orders else 'position'} {target!r}: pass expected_version")
        return (base or 1) + len(pending), deps  # our own pending open creates it at version 1

    # ------------------------------------------------------------------ signals
    def receive_message(
        self,
        text: str,
        channel: str,
        *,
        message_id: str | None = None,
        reply_to_id: str | None = None,
        reply_to_text: str | None = None,
    ) -> ReceiveResult:
        """Parse a signal message and record the intents it contains (each durable before this returns).

        ``reply_to_id``/``reply_to_text`` identify the message a follow-up ("move SL to 2345") answers.
        """
        if self._parser is None:
            raise ValueError("no signal parser configured")
        context: dict[str, object] = {"channel": channel, "message_id": message_id}
        if reply_to_id is not None or reply_to_text is not None:
            context |= {"reply_to_id": reply_to_id, "reply_to_text": reply_to_text}
        intents = self._parser.parse(text, context=context)
        actions: list[Action] = []
        advisories: list[AdvisoryDecision | None] = []
        skipped: list[tuple[SignalIntent, str]] = []
        for intent in intents:
            try:
                action = self._from_intent(intent)
            except ValueError as exc:
                skipped.append((intent, str(exc)))
                continue
            actions.append(action)
            record = self.outbox.get(action.action_id)
            advisories.append(None if record is None else record.advisory)
        return ReceiveResult(actions=actions, advisories=advisories, skipped=skipped)

    def _from_intent(self, intent: SignalIntent) -> Action:
        if intent.skip_reason is not None:
            raise ValueError(intent.skip_reason)
        if intent.action == "open":
            if intent.symbol is None or intent.side is None:
                raise ValueError("an open signal needs a symbol and a side")
            volume = intent.volume or self._policy.default_volume
            if volume is None:
                raise ValueError("no volume in the signal and no default volume configured")
            if intent.limit_price is not None:
                return self.open(
                    intent.symbol, intent.side, volume, order_type="limit", limit_price=intent.limit_price,
                    stop_loss=intent.stop_loss, take_profit=intent.take_profit, signal_id=intent.signal_id,
                )  # fmt: skip
            ref = intent.entry if intent.entry is not None else (self._quotes and self._quotes(intent.symbol))
            if not ref:
                raise ValueError("no reference price (signal has no entry and no quote is available)")
            return self.open(
                intent.symbol, intent.side, volume, ref_price=ref,
                stop_loss=intent.stop_loss, take_profit=intent.take_profit, signal_id=intent.signal_id,
            )  # fmt: skip
        opened = self.outbox.open_for_signal(intent.signal_id)
        if opened is None:
            raise ValueError(f"no position recorded for signal {intent.signal_id}")
        if intent.action == "cancel":
            return self.cancel(order_id_for(opened.action.action_id))
        position_id = position_id_for(opened.action.action_id)
        if intent.action == "close":
            return self.close(position_id)
        # A follow-up names only the level it moves; the other one keeps its current value (a modify sets both).
        stop_loss, take_profit = self._current_levels(position_id, opened.action)
        return self.modify(
            position_id,
            stop_loss=intent.stop_loss if intent.stop_loss is not None else stop_loss,
            take_profit=intent.take_profit if intent.take_profit is not None else take_profit,
        )

    def _current_levels(self, position_id: str, opened: Action) -> tuple[Decimal | None, Decimal | None]:
        """SL/TP as the user last saw them: the latest pending modify, else the server state, else the open."""
        levels: tuple[Decimal | None, Decimal | None] | None = None
        for position in self.outbox.server_state().positions:
            if position.position_id == position_id:
                levels = (position.stop_loss, position.take_profit)
        if levels is None and isinstance(opened.payload, OpenPayload):
            levels = (opened.payload.stop_loss, opened.payload.take_profit)
        for record in self.outbox.iter_unfinished():
            if record.action.target == position_id and isinstance(record.action.payload, ModifyPayload):
                levels = (record.action.payload.stop_loss, record.action.payload.take_profit)
        return levels or (None, None)

    # ------------------------------------------------------------------ what the user sees
    def view(self, *, limit: int = 1000) -> LocalView:
        """The last server state with up to ``limit`` pending actions rebased on top."""
        return rebase(self.outbox.server_state(), self.outbox.unfinished(limit=limit))

    def report(self, *, include_acknowledged: bool = False) -> list[ReportEntry]:
        """Actions that were not applied, with reason and server facts."""
        return self.outbox.report(include_acknowledged=include_acknowledged)

    def acknowledge_report(self, action_ids: Iterable[uuid.UUID] | None = None) -> int:
        """The user has seen these report entries (all by default)."""
        return self.outbox.acknowledge_report(action_ids)
