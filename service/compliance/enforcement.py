"""Enforcement: pre-trade checks, the account-state feed, clock events, mode switches and lock resets.

Serialising one account
-----------------------
Everything that reads and then writes an account's state (and appends to its audit chain) runs in
:meth:`EnforcementService.serialised`: one transaction that

* on PostgreSQL locks the account row first (``SELECT ... FOR UPDATE``), so a second request for the same
  account waits until the first commits and then sees its result;
* on SQLite (one writer at a time anyway) reads without a lock and writes with a compare-and-set on
  ``state_version`` (``UPDATE ... WHERE state_version = :read``); a writer that lost the race, or hit
  ``database is locked``, rolls back and runs again from the start on fresh state.

An allowed opening order is *reserved* in the state (see engine.py), so of two concurrent orders that each fit a
limit only alone, the second is checked against the first and refused. Accounts never wait for each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
import weakref
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from service.compliance.audit import ChainConflict, DatabaseAuditLog, account_chain
from service.compliance.engine import (
    EngineCache,
    decode_state,
    encode_state,
    ensure_day_start,
    fired_dict,
    release_for_fill,
    reserve,
    state_for_check,
)
from service.compliance.models import ComplianceProfile, EquityPoint, ModeChange, TradingAccount
from service.compliance.services import ComplianceService, ResolvedProfile, firm_admin_of, is_platform_admin
from service.problems import ProblemError, register_problem
from service.security.tokens import CurrentUser
from signalos_core import EvaluationError
from signalos_core.audit import AuditEntry
from signalos_core.compliance import AccountState, ClockEvent, Decision, Enforcement, Engine, Event, Fill, Order

__all__ = ["MAX_ATTEMPTS", "AccountLocks", "EnforcementService", "FeedResult", "StaleState", "account_status"]

register_problem("no_mode", 409, "No compliance mode", "The account has no compliance mode; choose one first.")
register_problem(
    "account_busy",
    503,
    "Account busy",
    "Too many concurrent updates of this account; retry shortly (the request had no effect).",
)

MAX_ATTEMPTS = 12
T = TypeVar("T")
_LOSS_KINDS = {"daily_loss": "daily", "max_loss": "max", "trailing_max_loss": "max"}


_ACCOUNTS = TradingAccount.__table__
_SAVE_STATE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("b_id"), _ACCOUNTS.c.state_version == bindparam("b_version"))
    .values(
        state=bindparam("b_state"), state_version=bindparam("b_next"), status=bindparam("b_status"),
        updated_at=bindparam("b_now"),
    )
)  # fmt: skip


async def store_state(db: AsyncSession, account: TradingAccount, state: AccountState, now: dt.datetime) -> bool:
    """Write ``state`` (and the status it implies) if the account's version is still the one read, in the
    caller's transaction; ``False`` when another writer moved it first."""
    status = account_status(state, now)
    result = await db.execute(
        _SAVE_STATE,
        {"b_id": account.id, "b_version": account.state_version, "b_state": encode_state(state),
         "b_next": account.state_version + 1, "b_status": status, "b_now": now},
    )  # fmt: skip
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    account.status = status
    return True


class StaleState(Exception):  # noqa: N818 - a retry signal, never shown to a client
    """Another writer changed the account between our read and our write."""


class AccountLocks:
    """In-process per-account locks (one registry per app, i.e. per event loop).

    Requests of one replica for the same account queue here instead of racing into the database and
    retrying; across replicas the database (row lock or version check) still decides.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        # SQLite has one writer at a time: queueing this process's compliance writers here is cheaper than
        # letting them poll SQLite's busy handler (which sleeps in growing steps and makes long tails).
        self.sqlite_writer = asyncio.Lock()

    def get(self, account_id: UUID) -> asyncio.Lock:
        """The lock of ``account_id`` (created on first use, dropped when nobody holds a reference)."""
        lock = self._locks.get(account_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[account_id] = lock
        return lock


class FeedResult(msgspec.Struct, kw_only=True):
    """What a batch of feed events did."""

    status: str
    actions: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    processed: int


def account_status(state: AccountState, now: dt.datetime) -> str:
    """``breached`` (terminal), ``locked`` (a lock in force at ``now``) or ``active``."""
    if any(lock.kind == "breach" for lock in state.locks):
        return "breached"
    if any(lock.kind == "lock" and (lock.until is None or now < lock.until) for lock in state.locks):
        return "locked"
    return "active"


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _rules_of(result: Decision | Enforcement) -> list[dict[str, Any]]:
    return [fired_dict(rule) for rule in (*result.fired, *result.warnings)]


class EnforcementService:
    """Engine calls under the per-account serialisation, with state persistence and audit records."""

    def __init__(
        self, db: AsyncSession, audit: DatabaseAuditLog, engines: EngineCache, locks: AccountLocks | None = None
    ) -> None:
        self.db = db
        self.audit = audit
        self.locks = locks or AccountLocks()
        self.accounts = ComplianceService(db, audit, engines)

    # ---------------------------------------------------------------------------------------- serialising
    async def serialised(self, account_id: UUID, work: Callable[[TradingAccount], Awaitable[T]]) -> T:
        """Run ``work`` on a freshly read (and on PostgreSQL row-locked) account, commit, retry on conflict."""
        async with self.locks.get(account_id):
            if self.db.get_bind().dialect.name == "sqlite":
                async with self.locks.sqlite_writer:
                    return await self._serialised(account_id, work)
            return await self._serialised(account_id, work)

    async def _serialised(self, account_id: UUID, work: Callable[[TradingAccount], Awaitable[T]]) -> T:
        postgres = self.db.get_bind().dialect.name == "postgresql"
        for attempt in range(MAX_ATTEMPTS):
            try:
                statement = select(TradingAccount).where(TradingAccount.id == account_id)
                statement = statement.execution_options(populate_existing=True)
                if postgres:
                    statement = statement.with_for_update()
                account = await self.db.scalar(statement)
                if account is None:
                    raise ProblemError("not_found", detail="No such trading account")
                result = await work(account)
                await self.db.commit()
                return result
            except (StaleState, ChainConflict, IntegrityError, OperationalError) as exc:
                await self.db.rollback()
                if isinstance(exc, OperationalError | IntegrityError) and not self._retryable(exc):
                    raise
                # Jittered back-off so racing writers do not collide again in lock step.
                await asyncio.sleep(random.uniform(0, 0.002 * (2 ** min(attempt, 6))))  # noqa: S311 - jitter, not security
            except BaseException:
                await self.db.rollback()
                raise
        raise ProblemError("account_busy")

    @staticmethod
    def _retryable(exc: Exception) -> bool:
        text = str(exc).lower()
        return any(
            marker in text
            for marker in ("database is locked", "unique", "duplicate key", "deadlock", "could not serialize")
        )

    async def _save(
        self, account: TradingAccount, state: AccountState, now: dt.datetime, **changes: Any
    ) -> AccountState:
        if not changes:  # the hot path: every allowed check
            if not await store_state(self.db, account, state, now):
                raise StaleState(str(account.id))
            return state
        status = account_status(state, now)
        result = await self.db.execute(
            update(TradingAccount)
            .where(TradingAccount.id == account.id, TradingAccount.state_version == account.state_version)
            .values(
                state=encode_state(state), state_version=account.state_version + 1, status=status,
                updated_at=now, **changes,
            )
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleState(str(account.id))
        account.status = status
        return state

    def _visible(self, user: CurrentUser, account: TradingAccount) -> None:
        # Checked on the row read under the lock: one query fewer on the hot path than a separate lookup.
        if not self.accounts.can_view(user, account):
            raise ProblemError("not_found", detail="No such trading account")

    async def _engine(self, account: TradingAccount) -> tuple[ResolvedProfile, Engine]:
        mode = await self.accounts.current_mode(account)
        if mode is None:
            raise ProblemError("no_mode")
        return mode, self.accounts.engine_for(mode)

    def _entry(self, account: TradingAccount, engine: Engine, kind: str, **fields: Any) -> AuditEntry:
        return AuditEntry(
            kind=kind, chain_id=account_chain(account.id), account_id=str(account.id), profile_id=engine.ref.id,
            profile_version=engine.ref.version, profile_hash=engine.ref.hash, backend=engine.ref.backend, **fields,
        )  # fmt: skip

    # --------------------------------------------------------------------------------------------- checks
    async def check(self, user: CurrentUser, account_id: UUID, order: Order) -> tuple[Decision, int, ResolvedProfile]:
        """Pre-trade decision; an allowed opening order is reserved; every decision is audited."""

        async def work(account: TradingAccount) -> tuple[Decision, int, ResolvedProfile]:
            self._visible(user, account)
            mode, engine = await self._engine(account)
            now = dt.datetime.now(dt.UTC)
            state = ensure_day_start(engine, decode_state(account.state), order.at)
            checked = state_for_check(state, now, order.id)
            try:
                decision = engine.check(checked, order)
            except EvaluationError as exc:
                raise ProblemError("unprocessable", detail=str(exc), extra={"field": exc.field}) from None
            if decision.allowed and order.intent == "open":
                await self._save(account, reserve(state, order, order.id or uuid.uuid4().hex, now), now)
            record = await self.audit.append(
                self.db,
                self._entry(
                    account, engine, "decision", input={"state": _builtins(checked), "order": _builtins(order)},
                    outcome=decision.outcome, rules=tuple(_rules_of(decision)), actor=str(user.id),
                ),
                now=now,
            )  # fmt: skip
            return decision, record.sequence, mode

        return await self.serialised(account_id, work)

    # ----------------------------------------------------------------------------------------------- feed
    async def feed(self, user: CurrentUser, account_id: UUID, events: list[Event]) -> FeedResult:
        """Apply feed events in order; persist the state, equity points and one audit record per event."""

        async def work(account: TradingAccount) -> FeedResult:
            self._visible(user, account)
            _mode, engine = await self._engine(account)
            now = dt.datetime.now(dt.UTC)
            state = decode_state(account.state)
            actions: list[dict[str, Any]] = []
            rules: list[dict[str, Any]] = []
            for event in events:
                state, enforcement = await self._observe(account, engine, state, event, now, actor=str(user.id))
                actions.extend(action.to_dict() for action in enforcement.actions)
                rules.extend(_rules_of(enforcement))
            await self._save(account, state, now)
            return FeedResult(status=account.status, actions=actions, rules=rules, processed=len(events))

        return await self.serialised(account_id, work)

    async def _observe(
        self,
        account: TradingAccount,
        engine: Engine,
        state: AccountState,
        event: Event,
        now: dt.datetime,
        *,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> tuple[AccountState, Enforcement]:
        before = ensure_day_start(engine, state, event.at)
        try:
            enforcement = engine.observe(before, event)
        except EvaluationError as exc:
            raise ProblemError("unprocessable", detail=str(exc), extra={"field": exc.field}) from None
        after = enforcement.next_state
        if isinstance(event, Fill) and event.action == "open":
            after = release_for_fill(after, event.symbol, event.side, event.size, now)
        await self.audit.append(
            self.db,
            self._entry(
                account, engine, "enforcement", input={"state": _builtins(before), "event": _builtins(event)},
                outcome=enforcement.outcome, rules=tuple(_rules_of(enforcement)), actor=actor,
                details={"actions": [a.to_dict() for a in enforcement.actions], **(details or {})},
            ),
            now=now,
        )  # fmt: skip
        self._record_point(account, after, enforcement, event.at)
        return after, enforcement

    def _record_point(self, account: TradingAccount, state: AccountState, result: Enforcement, at: dt.datetime) -> None:
        floors: dict[str, Decimal] = {}
        for rule in (*result.evaluated, *result.fired, *result.warnings):
            which = _LOSS_KINDS.get(rule.kind)
            if which is not None and rule.threshold is not None:
                # Several floors of one family (e.g. static and trailing): the highest one binds.
                floors[which] = max(floors.get(which, rule.threshold), rule.threshold)
        equity = state.equity if state.equity is not None else state.balance
        self.db.add(
            EquityPoint(
                id=uuid.uuid4(), account_id=account.id, at=at, equity=str(equity), balance=str(state.balance),
                daily_floor=str(floors["daily"]) if "daily" in floors else None,
                max_floor=str(floors["max"]) if "max" in floors else None,
            )
        )  # fmt: skip

    async def clock(
        self, account_id: UUID, event: ClockEvent, replica: str, *, before: Callable[[], Awaitable[None]]
    ) -> Enforcement | None:
        """Apply one clock event after ``before()`` (the claim) in the same transaction under the account lock."""

        async def work(account: TradingAccount) -> Enforcement | None:
            await before()
            if account.mode_profile_id is None:
                return None
            _mode, engine = await self._engine(account)
            now = dt.datetime.now(dt.UTC)
            state, enforcement = await self._observe(
                account, engine, decode_state(account.state), event, now, actor=f"clock:{replica}"
            )
            await self._save(account, state, now)
            return enforcement

        return await self.serialised(account_id, work)

    # ---------------------------------------------------------------------------------------------- modes
    async def set_mode(self, user: CurrentUser, account_id: UUID, data: Any) -> TradingAccount:
        """Switch (or remove, with ``profile_id: null``) the account's mode; recorded in history and audit."""
        visible = await self.accounts.get_account(user, account_id)
        self.accounts.check_mode_permission(user, visible, data.source)
        resolved = None
        if data.profile_id is not None:
            resolved = await self.accounts.resolve(
                user,
                visible,
                source=data.source,
                profile_id=data.profile_id,
                version=data.version,
                params=dict(data.params),
                require_effective=True,
            )
            engine = self.accounts.engine_for(resolved)  # compiles now: a broken profile fails before the switch

        async def work(account: TradingAccount) -> TradingAccount:
            now = dt.datetime.now(dt.UTC)
            state = decode_state(account.state)
            kind = self.accounts.mode_kind(account, resolved) if resolved else None
            if resolved is not None:
                state = ensure_day_start(engine, state, now)
                if resolved.row_id is not None:
                    row = await self.db.get(ComplianceProfile, resolved.row_id)
                    if row is not None and row.first_used_at is None:
                        row.first_used_at = now
            change = ModeChange(
                id=uuid.uuid4(), account_id=account.id, kind=kind, source=resolved.source if resolved else None,
                profile_id=resolved.profile_id if resolved else None, version=resolved.version if resolved else None,
                params=resolved.params if resolved else {}, previous_profile_id=account.mode_profile_id,
                previous_version=account.mode_version, actor_id=user.id, actor_role=user.role, reason=data.reason,
                changed_at=now,
            )  # fmt: skip
            self.db.add(change)
            await self._save(
                account, state, now, mode_kind=kind, mode_source=change.source, mode_profile_id=change.profile_id,
                mode_version=change.version, mode_params=change.params,
                mode_profile_row=resolved.row_id if resolved else None, mode_changed_at=now,
            )  # fmt: skip
            await self.audit.append(
                self.db,
                AuditEntry(
                    kind="mode_change", chain_id=account_chain(account.id), account_id=str(account.id),
                    profile_id=change.profile_id, profile_version=change.version,
                    profile_hash=engine.ref.hash if resolved else None, actor=str(user.id), reason=data.reason,
                    outcome="switched" if resolved else "removed",
                    details={
                        "from": {"profile_id": account.mode_profile_id, "version": account.mode_version},
                        "to": {"profile_id": change.profile_id, "version": change.version, "source": change.source,
                               "kind": kind, "params": change.params},
                        "actor_role": user.role,
                    },
                ),
                now=now,
            )  # fmt: skip
            return account

        await self.serialised(account_id, work)
        return await self.accounts.get_account(user, account_id)

    # ---------------------------------------------------------------------------------------------- reset
    async def reset(self, user: CurrentUser, account_id: UUID, reason: str, rule_id: str | None) -> AccountState:
        """Lift day locks early (firm admin of a funded account, the owner of an own account, platform admin).

        Breaches are terminal and never lifted.
        """
        visible = await self.accounts.get_account(user, account_id)
        allowed = (
            firm_admin_of(user, visible.firm_id)
            or is_platform_admin(user)
            or (visible.firm_id is None and visible.owner_id == user.id)
        )
        if not allowed:
            raise ProblemError("forbidden", detail="Only the funding firm's admins lift locks on a funded account")

        async def work(account: TradingAccount) -> AccountState:
            _mode, engine = await self._engine(account)
            now = dt.datetime.now(dt.UTC)
            state = decode_state(account.state)
            lifted = [
                lock for lock in state.locks if lock.kind == "lock" and (rule_id is None or lock.rule_id == rule_id)
            ]
            if not lifted:
                raise ProblemError("conflict", detail="No lock to lift (breaches are never lifted)")
            state = msgspec.structs.replace(state, locks=[lock for lock in state.locks if lock not in lifted])
            await self._save(account, state, now)
            await self.audit.append(
                self.db,
                self._entry(
                    account, engine, "manual_reset", actor=str(user.id), reason=reason, outcome="unlocked",
                    rules=tuple({"rule_id": lock.rule_id, "until": _builtins(lock.until)} for lock in lifted),
                ),
                now=now,
            )  # fmt: skip
            return state

        return await self.serialised(account_id, work)

    async def current(self, user: CurrentUser, account_id: UUID) -> tuple[TradingAccount, AccountState]:
        """The account and its decoded state (read-only)."""
        account = await self.accounts.get_account(user, account_id)
        return account, decode_state(account.state)

    async def history(self, user: CurrentUser, account_id: UUID) -> list[ModeChange]:
        """Mode history of a visible account."""
        return await self.accounts.history(await self.accounts.get_account(user, account_id))
