"""Server-side compliance for synced orders: the account's mode as it is when the batch is applied.

The device checked its intents against a cached profile (advisory); here the trading account's current mode and
live state decide, so a profile tightened while the device was offline still refuses what it no longer allows.
Every decision is appended to the account's hash-chained audit trail in the push's own transaction (so it can be
replayed like a pre-trade check), and the push holds the account's in-process lock like the compliance
endpoints do (and, on PostgreSQL, its row lock, as other replicas' checks take it).

An applied open is *reserved* in the account's compliance state exactly like an allowed pre-trade check: later
opens of the same batch, and every later check, count it as a position until the broker's fill arrives through
``POST /api/trading-accounts/{id}/feed`` (or the reservation expires). Fills of synced orders go to the
paper/broker leg, not into the compliance state: feed them as the broker reports them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.compliance.audit import account_chain
from service.compliance.enforcement import store_state
from service.compliance.engine import (
    decode_state,
    ensure_day_start,
    fired_dict,
    reserve,
    state_for_check,
)
from service.compliance.models import TradingAccount
from service.compliance.services import ComplianceService
from service.problems import ProblemError
from service.security.tokens import CurrentUser
from signalos_core.audit import AuditEntry
from signalos_core.compliance import AccountState, Decision, Engine, Order
from signalos_core.offline import EngineAdvisor, PushResponse

__all__ = ["AuditedAdvisor", "account_advisor", "record_decisions", "save_reservations"]


class _RecordingEngine:
    """Delegates ``check`` to the real engine, keeps every (state, order, decision) for the audit trail, and
    reserves each allowed open so the next order of the batch is checked against it."""

    def __init__(self, engine: Engine, state: AccountState, now: datetime) -> None:
        self.engine = engine
        self.state = state
        self.now = now
        self.checks: list[tuple[AccountState, Order, Decision]] = []

    def snapshot(self) -> AccountState:
        return state_for_check(self.state, self.now)

    def check(self, state: AccountState, order: Order) -> Decision:
        decision = self.engine.check(state, order)
        self.checks.append((state, order, decision))
        if decision.allowed and order.intent == "open" and order.id:
            self.state = reserve(self.state, order, order.id, self.now)
        return decision


class AuditedAdvisor(EngineAdvisor):
    """An :class:`EngineAdvisor` over one trading account whose decisions are recorded for the audit trail."""

    def __init__(self, account: TradingAccount, engine: Engine, state: AccountState, now: datetime) -> None:
        self.account = account
        self.earlier_orders = frozenset(order.id for order in state.pending_orders)
        self.recorder = _RecordingEngine(engine, state, now)
        super().__init__(cast(Engine, self.recorder), self.recorder.snapshot, clock=lambda: now)


async def account_advisor(
    db: AsyncSession, request: Request[Any, Any, Any], user: CurrentUser, account_id: UUID
) -> AuditedAdvisor:
    """An advisor checking opens against ``account_id``'s current mode (404 if not visible, 409 without a mode)."""
    state = request.app.state
    accounts = ComplianceService(db, state.compliance_audit, state.compliance_engines)
    # PostgreSQL: hold the account row like the compliance endpoints do, so no other replica's check interleaves.
    account = await accounts.get_account(user, account_id, for_update=True)
    mode = await accounts.current_mode(account)
    if mode is None:
        raise ProblemError(
            "no_mode", detail="this trading account has no compliance mode to check synced orders against"
        )
    engine = accounts.engine_for(mode)
    now = datetime.now(UTC)
    return AuditedAdvisor(account, engine, ensure_day_start(engine, decode_state(account.state), now), now)


async def save_reservations(db: AsyncSession, advisor: AuditedAdvisor, response: PushResponse) -> None:
    """Keep the reservations of the opens that were applied (an allowed open can still be refused afterwards,
    e.g. ``rejected:price_moved``) and store the state in the push's transaction; a concurrent writer makes the
    push fail with ``sync_busy`` (retryable, deduplicated by action id)."""
    recorder = advisor.recorder
    applied = {f"rsv:{result.action_id}" for result in response.results if result.code == "applied"}
    made = {order.id for order in recorder.state.pending_orders} - advisor.earlier_orders
    if not made & applied:
        return
    kept = [order for order in recorder.state.pending_orders if order.id not in made or order.id in applied]
    state = msgspec.structs.replace(recorder.state, pending_orders=kept)
    if not await store_state(db, advisor.account, state, recorder.now):
        raise ProblemError("sync_busy", detail="the account's compliance state changed during the push; retry it")


async def record_decisions(
    db: AsyncSession, request: Request[Any, Any, Any], user: CurrentUser, advisor: AuditedAdvisor, device_id: str
) -> None:
    """Append one audit record per compliance decision of the push (same transaction as the push)."""
    audit = request.app.state.compliance_audit
    ref = advisor.recorder.engine.ref
    now = datetime.now(UTC)
    for state, order, decision in advisor.recorder.checks:
        entry = AuditEntry(
            kind="decision", chain_id=account_chain(advisor.account.id), account_id=str(advisor.account.id),
            profile_id=ref.id, profile_version=ref.version, profile_hash=ref.hash, backend=ref.backend,
            input={"state": msgspec.to_builtins(state), "order": msgspec.to_builtins(order)},
            outcome=decision.outcome, rules=tuple(fired_dict(rule) for rule in (*decision.fired, *decision.warnings)),
            actor=str(user.id), reason=f"offline sync from device {device_id}",
        )  # fmt: skip
        await audit.append(db, entry, now=now)
