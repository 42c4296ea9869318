"""Read-side work of the compliance area: account status, daily and firm reports, audit queries, exports,
verification and dry runs. Nothing here writes an account's state."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select

from service.compliance.audit import account_chain, firm_chain
from service.compliance.enforcement import EnforcementService, account_status
from service.compliance.engine import decode_state, ensure_day_start, fired_dict
from service.compliance.models import EquityPoint, TradingAccount
from service.compliance.reports import StatusView, compute_status, trading_day_window
from service.compliance.schemas import (
    AccountStatusOut,
    AuditPageOut,
    AuditRecordOut,
    DailyReportOut,
    DryRunChangeOut,
    DryRunOut,
    FirmReportOut,
    VerifyOut,
)
from service.compliance.services import firm_admin_of, is_platform_admin
from service.problems import ProblemError
from service.security.tokens import CurrentUser
from signalos_core.audit import AuditQuery, AuditRecord, replay, write_csv, write_jsonl
from signalos_core.compliance import AccountState, Event, Order

__all__ = ["ComplianceQueries", "record_out"]

_VIOLATION_REASONS = frozenset({"violated", "missing_input", "locked", "breached"})


def record_out(record: AuditRecord) -> AuditRecordOut:
    """An audit record in the API's shape (the logged input is left out; export includes it)."""
    return AuditRecordOut(
        chain_id=record.chain_id, sequence=record.sequence, recorded_at=record.recorded_at, kind=record.kind,
        account_id=record.account_id, profile_id=record.profile_id, profile_version=record.profile_version,
        profile_hash=record.profile_hash, backend=record.backend, input_digest=record.input_digest,
        outcome=record.outcome, rules=list(record.rules), actor=record.actor, reason=record.reason,
        details=record.details, hash=record.hash, prev_hash=record.prev_hash,
    )  # fmt: skip


class ComplianceQueries(EnforcementService):
    """Status, reports, audit and dry runs (shares the enforcement service's helpers)."""

    # --------------------------------------------------------------------------------------------- status
    async def status(self, user: CurrentUser, account_id: UUID) -> AccountStatusOut:
        """Each limit with value, threshold and headroom; objectives; locks; warnings."""
        account, state = await self.current(user, account_id)
        now = dt.datetime.now(dt.UTC)
        view = await self._view(account, state, now)
        return AccountStatusOut(
            account_id=account.id, status=account_status(state, max(now, state.as_of or now)), as_of=state.as_of,
            profile_id=account.mode_profile_id, version=account.mode_version, balance=state.balance,
            equity=state.equity, limits=view.limits if view else [], objectives=view.objectives if view else [],
            locks=view.locks if view else [], warnings=view.warnings if view else [],
        )  # fmt: skip

    async def _view(self, account: TradingAccount, state: AccountState, now: dt.datetime) -> StatusView | None:
        mode = await self.accounts.current_mode(account)
        if mode is None:
            return None
        engine = self.accounts.engine_for(mode)
        return compute_status(engine, ensure_day_start(engine, state, now), now)

    # -------------------------------------------------------------------------------------------- reports
    async def daily_report(self, user: CurrentUser, account_id: UUID, day: dt.date | None) -> DailyReportOut:
        """One trading day of one account (the day in the profile's zone; default today)."""
        account, state = await self.current(user, account_id)
        mode = await self.accounts.current_mode(account)
        if mode is None:
            raise ProblemError("no_mode")
        engine = self.accounts.engine_for(mode)
        now = dt.datetime.now(dt.UTC)
        day = day or engine.clock.trading_day(now)
        start, end = trading_day_window(engine, day)
        points = [
            {"at": p.at, "equity": Decimal(p.equity), "balance": Decimal(p.balance),
             "daily_floor": Decimal(p.daily_floor) if p.daily_floor else None,
             "max_floor": Decimal(p.max_floor) if p.max_floor else None}
            for p in await self.db.scalars(
                select(EquityPoint)
                .where(EquityPoint.account_id == account.id, EquityPoint.at >= start, EquityPoint.at < end)
                .order_by(EquityPoint.at, EquityPoint.id)
            )
        ]  # fmt: skip
        violations: list[dict[str, Any]] = []
        warnings: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        query = AuditQuery(chain_id=account_chain(account.id), limit=1000)
        async for record in self._iter(query):
            when = self._event_time(record)
            if not start <= when < end:
                continue
            counts[f"{record.kind}:{record.outcome}"] = counts.get(f"{record.kind}:{record.outcome}", 0) + 1
            for rule in record.rules:
                item = {"at": when.isoformat(), "rule_id": rule.get("rule_id"), "outcome": rule.get("outcome"),
                        "message": rule.get("message", ""), "kind": record.kind}  # fmt: skip
                if rule.get("reason") == "warning":
                    warnings.append(item)
                elif rule.get("reason") in _VIOLATION_REASONS:
                    violations.append(item)
        view = compute_status(engine, ensure_day_start(engine, state, now), now)
        return DailyReportOut(
            account_id=account.id, day=day, timezone=engine.clock.tz_name, start=start, end=end,
            profile_id=account.mode_profile_id, version=account.mode_version, status=account.status, points=points,
            violations=violations, warnings=warnings, objectives=view.objectives, decisions=counts,
        )  # fmt: skip

    @staticmethod
    def _event_time(record: AuditRecord) -> dt.datetime:
        # Decisions and observations are placed at the time of the order or event they judged.
        data = record.input if isinstance(record.input, dict) else {}
        for key in ("order", "event"):
            item = data.get(key)
            if isinstance(item, dict) and isinstance(item.get("at"), str):
                return dt.datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
        return record.recorded_at

    async def firm_report(self, user: CurrentUser, firm_id: UUID, near: Decimal) -> FirmReportOut:
        """Breached, locked and near-limit accounts of a firm."""
        if not (firm_admin_of(user, firm_id) or is_platform_admin(user)):
            raise ProblemError("not_found", detail="No such firm")
        now = dt.datetime.now(dt.UTC)
        accounts = list(
            await self.db.scalars(
                select(TradingAccount).where(TradingAccount.firm_id == firm_id).order_by(TradingAccount.name)
            )
        )
        breached, locked, near_limit = [], [], []
        for account in accounts:
            state = decode_state(account.state)
            status = account_status(state, max(now, state.as_of or now))
            summary: dict[str, Any] = {"account_id": str(account.id), "name": account.name,
                                       "owner_id": str(account.owner_id), "profile_id": account.mode_profile_id,
                                       "version": account.mode_version, "status": status,
                                       "locks": [msgspec.to_builtins(lock) for lock in state.locks]}  # fmt: skip
            if status == "breached":
                breached.append(summary)
                continue
            if status == "locked":
                locked.append(summary)
            view = await self._view(account, state, now)
            usage = view.max_usage() if view else None
            if usage is not None and usage >= near:
                worst = (
                    max((lim for lim in view.limits if lim.usage is not None), key=lambda lim: lim.usage)
                    if view
                    else None
                )
                near_limit.append({**summary, "usage": str(usage), "rule_id": worst.rule_id if worst else None,
                                   "headroom": str(worst.headroom) if worst else None})  # fmt: skip
        return FirmReportOut(
            firm_id=firm_id, generated_at=now, accounts=len(accounts), breached=breached, locked=locked,
            near_limit=near_limit, near_limit_threshold=near,
        )  # fmt: skip

    # ---------------------------------------------------------------------------------------------- audit
    async def _iter(self, query: AuditQuery, chain_ids: list[str] | None = None) -> Any:
        while True:
            page = await self.audit.query(self.db, query, chain_ids=chain_ids)
            for record in page.items:
                yield record
            if page.next_cursor is None:
                return
            query = msgspec.structs.replace(query, after=page.next_cursor)

    async def audit_page(self, user: CurrentUser, account_id: UUID, query: AuditQuery) -> AuditPageOut:
        """One page of the account's audit records."""
        account = await self.accounts.get_account(user, account_id)
        query = msgspec.structs.replace(query, chain_id=account_chain(account.id))
        page = await self.audit.query(self.db, query)
        return AuditPageOut(items=[record_out(r) for r in page.items], next_cursor=page.next_cursor)

    async def audit_export(self, user: CurrentUser, account_id: UUID, query: AuditQuery, fmt: str) -> str:
        """Every matching record as JSON lines (full records, input included) or CSV."""
        account = await self.accounts.get_account(user, account_id)
        query = msgspec.structs.replace(query, chain_id=account_chain(account.id), limit=1000, after=None)
        records = [record async for record in self._iter(query)]
        out = io.StringIO()
        (write_jsonl if fmt == "jsonl" else write_csv)(iter(records), out)
        return out.getvalue()

    async def verify_account(self, user: CurrentUser, account_id: UUID) -> VerifyOut:
        """Verify the account's chain against its recorded head."""
        account = await self.accounts.get_account(user, account_id)
        report = await self.audit.verify_chain(self.db, account_chain(account.id))
        return VerifyOut(ok=report.ok, chains=[msgspec.to_builtins(report)])

    async def verify_firm(self, user: CurrentUser, firm_id: UUID) -> VerifyOut:
        """Verify the chains of every account of a firm and of its profile publications."""
        if not (firm_admin_of(user, firm_id) or is_platform_admin(user)):
            raise ProblemError("not_found", detail="No such firm")
        ids = await self.db.scalars(select(TradingAccount.id).where(TradingAccount.firm_id == firm_id))
        chains = [firm_chain(firm_id), *(account_chain(i) for i in ids)]
        reports = [await self.audit.verify_chain(self.db, chain) for chain in chains]
        return VerifyOut(ok=all(r.ok for r in reports), chains=[msgspec.to_builtins(r) for r in reports])

    # -------------------------------------------------------------------------------------------- dry run
    async def dry_run(self, user: CurrentUser, account_id: UUID, data: Any) -> DryRunOut:
        """Replay the account's logged decisions and observations of the last N days against a candidate."""
        account = await self.accounts.get_account(user, account_id)
        privileged = firm_admin_of(user, account.firm_id) or is_platform_admin(user)
        if account.firm_id is not None and not privileged and data.source == "firm":
            raise ProblemError("mode_forbidden", detail="Only the firm's admins dry-run firm profiles")
        resolved = await self.accounts.resolve(
            user,
            account,
            source=data.source,
            profile_id=data.profile_id,
            version=data.version,
            params=dict(data.params),
            require_effective=False,
        )
        engine = self.accounts.engine_for(resolved)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=data.days)
        query = AuditQuery(chain_id=account_chain(account.id), since=since, limit=1000)
        records = [record async for record in self._iter(query)]

        def evaluate(logged: Any) -> dict[str, Any]:
            state = msgspec.convert(logged["state"], AccountState, strict=False)
            if "order" in logged:
                decision = engine.check(state, msgspec.convert(logged["order"], Order, strict=False))
                return {"outcome": decision.outcome,
                        "rules": [fired_dict(r) for r in (*decision.fired, *decision.warnings)]}  # fmt: skip
            result = engine.observe(state, msgspec.convert(logged["event"], Event, strict=False))
            return {"outcome": result.outcome, "rules": [fired_dict(r) for r in (*result.fired, *result.warnings)]}

        report = replay(records, evaluate, ignore_fields=("message", "extra"))
        return DryRunOut(
            profile_id=resolved.profile_id, version=resolved.version, considered=report.considered,
            replayed=report.replayed, unchanged=report.unchanged, skipped=report.skipped,
            changed=[
                DryRunChangeOut(
                    sequence=d.sequence, recorded_at=d.recorded_at, kind=d.kind, outcome_before=d.outcome_before,
                    outcome_after=d.outcome_after, rules_added=list(d.rules_added),
                    rules_removed=list(d.rules_removed), rules_changed=[msgspec.to_builtins(c) for c in d.rules_changed],
                )
                for d in report.changed
            ],
            errors=[msgspec.to_builtins(e) for e in report.errors],
        )  # fmt: skip
