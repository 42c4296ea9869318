"""Clock events inside the service: day boundaries, weekend close, close-by times and news windows.

Every replica runs :class:`ClockScheduler` (``SIGNALOS_COMPLIANCE_CLOCK_INTERVAL`` seconds apart, 0 disables).
A tick lists, per account with a mode, the events due since the mode was set (at most :data:`LOOKBACK` back):

* ``day_boundary`` at the profile's day boundary, computed in its IANA zone for each local date, so the
  instant follows DST (a boundary inside a spring-forward gap moves forward, as a broker clock does);
* ``weekend_market_close`` on Fridays at 17:00 America/New_York (the FX week's close) for profiles with a
  ``weekend_close`` rule;
* ``position_time_check`` at each ``close_by_time`` rule's ``flat_by`` time (Monday to Friday, its zone) and at
  the start of each restricted news window of the account's news calendar (``news_blackout`` rules).

Exactly once: an event is claimed by inserting ``(account, event, scheduled_at)`` into
``compliance_clock_job`` (unique) *in the same transaction* that applies it to the account under the
per-account lock. Of two replicas, the second waits on the lock, then fails the unique key and skips; if the
first crashes before committing, its claim rolls back with its effect and the next tick takes the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import structlog
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.compliance.audit import DatabaseAuditLog
from service.compliance.enforcement import AccountLocks, EnforcementService
from service.compliance.engine import EngineCache, decode_state
from service.compliance.models import ClockJob, TradingAccount
from signalos_core.compliance import ClockEvent, Profile

__all__ = [
    "LOOKBACK",
    "AlreadyClaimed",
    "ClockScheduler",
    "DueEvent",
    "compliance_lifespan",
    "due_events",
]

LOOKBACK = dt.timedelta(days=3)
_FX_CLOSE_ZONE = ZoneInfo("America/New_York")
_FX_CLOSE_TIME = dt.time(17, 0)
_log = structlog.get_logger("signalos.compliance.clock")


class AlreadyClaimed(Exception):  # noqa: N818 - a control-flow signal: another replica processed the event
    """The event was claimed (and applied) by another replica or an earlier tick."""


class DueEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One clock event due for an account."""

    event: str
    at: dt.datetime
    instruments_closing: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, dt.datetime]:
        """The claim key (with the account id)."""
        return (self.event, self.at)


def _wall(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    # Through UTC and back: a wall time in a DST gap moves forward; an ambiguous one takes its first instant.
    return dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC)


def _days(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> list[dt.date]:
    first = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _hhmm(text: str) -> dt.time:
    hour, minute = text.split(":")
    return dt.time(int(hour), int(minute))


def due_events(profile: Profile, news: list[Any], start: dt.datetime, end: dt.datetime) -> list[DueEvent]:
    """Clock events of ``profile`` with ``start < at <= end``, in time order (ties: day boundary first)."""
    out: list[DueEvent] = []
    boundary_tz = ZoneInfo(profile.day_boundary.timezone)
    boundary_at = _hhmm(profile.day_boundary.at)
    out.extend(
        DueEvent(event="day_boundary", at=_wall(d, boundary_at, boundary_tz)) for d in _days(start, end, boundary_tz)
    )
    kinds = {rule.kind: rule for rule in profile.rules}
    if "weekend_close" in kinds:
        out.extend(
            DueEvent(event="weekend_market_close", at=_wall(d, _FX_CLOSE_TIME, _FX_CLOSE_ZONE))
            for d in _days(start, end, _FX_CLOSE_ZONE)
            if d.weekday() == 4
        )
    for rule in profile.rules:
        if rule.kind == "close_by_time":
            tz = ZoneInfo(str(rule.params["timezone"]))
            flat_by = _hhmm(str(rule.params["flat_by"]))
            out.extend(
                DueEvent(event="position_time_check", at=_wall(d, flat_by, tz))
                for d in _days(start, end, tz)
                if d.weekday() < 5
            )
        if rule.kind == "news_blackout":
            before = dt.timedelta(minutes=int(rule.params.get("minutes_before", 0)))
            for item in news:
                if item.restricted:
                    out.append(
                        DueEvent(
                            event="position_time_check",
                            at=(item.release_at - before).astimezone(dt.UTC),
                            instruments_closing=tuple(item.targeted_instruments),
                        )
                    )
    unique = {(e.event, e.at): e for e in out if start < e.at <= end}
    order = {"day_boundary": 0, "weekend_market_close": 1, "position_time_check": 2}
    return sorted(unique.values(), key=lambda e: (e.at, order.get(e.event, 9)))


class ClockScheduler:
    """Finds due clock events and applies each exactly once across replicas."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        audit: DatabaseAuditLog,
        engines: EngineCache,
        *,
        replica: str | None = None,
        locks: AccountLocks | None = None,
    ) -> None:
        self.locks = locks or AccountLocks()
        self.sessionmaker = sessionmaker
        self.audit = audit
        self.engines = engines
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    async def run_once(self, now: dt.datetime | None = None) -> list[tuple[UUID, DueEvent]]:
        """One tick: apply every due, unclaimed event; returns the events this replica applied."""
        now = now or dt.datetime.now(dt.UTC)
        async with self.sessionmaker() as db:
            rows = (
                await db.execute(
                    select(TradingAccount.id, TradingAccount.mode_changed_at).where(
                        TradingAccount.mode_profile_id.is_not(None)
                    )
                )
            ).all()
        applied: list[tuple[UUID, DueEvent]] = []
        for account_id, mode_changed_at in rows:
            since = max(mode_changed_at or now, now - LOOKBACK)
            applied.extend(await self._account(account_id, since, now))
        return applied

    async def _account(self, account_id: UUID, since: dt.datetime, now: dt.datetime) -> list[tuple[UUID, DueEvent]]:
        async with self.sessionmaker() as db:
            service = EnforcementService(db, self.audit, self.engines, self.locks)
            account = await db.get(TradingAccount, account_id)
            mode = await service.accounts.current_mode(account) if account is not None else None
            if account is None or mode is None:
                return []
            profile = service.accounts.engine_for(mode).profile
            due = due_events(profile, list(decode_state(account.state).news_calendar), since, now)
            done = set(
                (
                    await db.execute(
                        select(ClockJob.event, ClockJob.scheduled_at).where(
                            ClockJob.account_id == account_id, ClockJob.scheduled_at > since
                        )
                    )
                ).all()
            )
            await db.commit()
            applied = []
            for item in due:
                if item.key in done:
                    continue
                try:
                    await self._apply(service, db, account_id, item, now)
                except AlreadyClaimed:
                    continue
                applied.append((account_id, item))
            return applied

    async def _apply(
        self, service: EnforcementService, db: AsyncSession, account_id: UUID, item: DueEvent, now: dt.datetime
    ) -> None:
        event = ClockEvent(at=item.at, event=item.event, instruments_closing=list(item.instruments_closing))  # type: ignore[arg-type]

        async def claim() -> None:
            job = ClockJob(
                id=uuid.uuid4(), account_id=account_id, event=item.event, scheduled_at=item.at,
                claimed_by=self.replica, claimed_at=now, outcome="applied", actions=[],
            )  # fmt: skip
            db.add(job)
            try:
                await db.flush()
            except IntegrityError:
                raise AlreadyClaimed(f"{account_id} {item.event} {item.at.isoformat()}") from None

        enforcement = await service.clock(account_id, event, self.replica, before=claim)
        if enforcement is not None:
            _log.info("clock_event", account_id=str(account_id), clock_event=item.event, at=item.at.isoformat(),
                      outcome=enforcement.outcome, replica=self.replica)  # fmt: skip


@contextlib.asynccontextmanager
async def compliance_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Attach the audit log, the engine cache and the clock scheduler; run the scheduler's loop."""
    app.state.compliance_audit = DatabaseAuditLog()
    app.state.compliance_engines = EngineCache()
    app.state.compliance_locks = AccountLocks()
    try:
        async with app.state.sessionmaker() as db:
            await app.state.compliance_audit.ensure_schema_marker(db)
            await db.commit()
    except (SQLAlchemyError, OSError) as exc:  # not migrated or unreachable: /ready reports it; retried next start
        _log.warning("audit_marker_skipped", exc_type=type(exc).__name__)
    scheduler = ClockScheduler(
        app.state.sessionmaker,
        app.state.compliance_audit,
        app.state.compliance_engines,
        locks=app.state.compliance_locks,
    )
    app.state.compliance_scheduler = scheduler
    interval = app.state.settings.compliance_clock_interval
    task: asyncio.Task[None] | None = None

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await scheduler.run_once()
            except Exception as exc:  # a failed tick is logged and retried next tick; the loop must survive
                _log.error("clock_tick_failed", exc_type=type(exc).__name__, exc_info=exc)

    if interval > 0:
        task = asyncio.create_task(loop())
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
