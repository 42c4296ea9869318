"""HTTP endpoints of the compliance area's trading accounts: registration, modes, pre-trade checks, the state
feed, enforcement resets, status, dry runs, audit and reports (profile versions and firm-wide routes are in
:mod:`service.compliance.profile_controllers`). Every handler carries ``TRADING_GUARDS``; who may do what is
checked per resource in the services (other users' accounts are 404, forbidden mode changes 403
``mode_forbidden``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import BodyKwarg, FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from service.compliance.models import ModeChange, TradingAccount
from service.compliance.queries import ComplianceQueries
from service.compliance.reports import render_daily_html, rule_out
from service.compliance.schemas import (
    AccountStatusOut,
    ActionOut,
    AuditPageOut,
    DailyReportOut,
    DecisionOut,
    DryRunIn,
    DryRunOut,
    FeedIn,
    FeedOut,
    ModeChangeOut,
    ModeIn,
    ModeOut,
    ResetIn,
    TradingAccountIn,
    TradingAccountOut,
    VerifyOut,
)
from service.problems import ProblemError
from service.security.guards import TRADING_GUARDS, current_user
from signalos_core import AuditError
from signalos_core.audit import AuditQuery
from signalos_core.compliance import Order

__all__ = ["TradingAccountController", "example_body", "provide_queries"]

_ORDER_EXAMPLE = {
    "id": "ord-1", "symbol": "EURUSD", "side": "buy", "size": "1.5", "at": "2026-05-12T09:30:00Z",
    "price": "1.0850", "stop_loss": "1.0800", "intent": "open",
}  # fmt: skip
_FEED_EXAMPLE = {
    "events": [
        {"type": "equity_update", "at": "2026-05-12T10:00:00Z", "equity": "98250.00"},
        {"type": "fill", "at": "2026-05-12T10:05:00Z", "symbol": "EURUSD", "side": "buy", "size": "1.5",
         "price": "1.0851", "action": "open", "position_id": "p-1"},
        {"type": "fill", "at": "2026-05-12T11:00:00Z", "symbol": "EURUSD", "side": "sell", "size": "1.5",
         "price": "1.0841", "action": "close", "position_id": "p-1", "net_pnl": "-150.00"},
    ]
}  # fmt: skip


def example_body(summary: str, value: Any) -> BodyKwarg:
    """A request body documented with one named example."""
    return BodyKwarg(examples=[Example(summary=summary, value=value)])


async def provide_queries(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> ComplianceQueries:
    """Dependency: the compliance services on the request's database session."""
    state = request.app.state
    return ComplianceQueries(db_session, state.compliance_audit, state.compliance_engines, state.compliance_locks)


def _mode_out(account: TradingAccount) -> ModeOut | None:
    if account.mode_profile_id is None:
        return None
    return ModeOut(
        kind=account.mode_kind or "", source=account.mode_source or "", profile_id=account.mode_profile_id,
        version=account.mode_version or "", params=dict(account.mode_params or {}), changed_at=account.mode_changed_at,
    )  # fmt: skip


def account_out(account: TradingAccount) -> TradingAccountOut:
    """An account in the API's shape."""
    return TradingAccountOut(
        id=account.id, owner_id=account.owner_id, firm_id=account.firm_id, name=account.name, broker=account.broker,
        platform=account.platform, account_size=Decimal(account.account_size), currency=account.currency,
        status=account.status, mode=_mode_out(account), created_at=account.created_at,
    )  # fmt: skip


def _change_out(change: ModeChange) -> ModeChangeOut:
    return ModeChangeOut(
        id=change.id, kind=change.kind, source=change.source, profile_id=change.profile_id, version=change.version,
        params=dict(change.params or {}), previous_profile_id=change.previous_profile_id,
        previous_version=change.previous_version, actor_id=change.actor_id, actor_role=change.actor_role,
        reason=change.reason, changed_at=change.changed_at,
    )  # fmt: skip


def _audit_query(
    kind: str | None, rule_id: str | None, outcome: str | None, since: dt.datetime | None, until: dt.datetime | None,
    cursor: str | None, limit: int, newest_first: bool,
) -> AuditQuery:  # fmt: skip
    try:
        return AuditQuery(
            kind=kind, rule_id=rule_id, outcome=outcome, since=since, until=until, after=cursor, limit=limit,
            newest_first=newest_first,
        )  # fmt: skip
    except AuditError as exc:
        field = getattr(exc, "field", None) or ""
        # The library calls the cursor `after`; the query parameter (the name the client sent) is `cursor`.
        field = "cursor" if field == "after" else field
        raise ProblemError(
            "validation_error", detail=str(exc), extra={"errors": [{"field": field, "message": str(exc)}]}
        ) from None


Since = Annotated[
    dt.datetime | None,
    QueryParameter(
        description="From (inclusive), ISO 8601 with offset", examples=[Example(value="2026-05-12T00:00:00Z")]
    ),
]
Until = Annotated[
    dt.datetime | None,
    QueryParameter(
        description="Until (exclusive), ISO 8601 with offset", examples=[Example(value="2026-05-13T00:00:00Z")]
    ),
]
RuleFilter = Annotated[
    str | None,
    QueryParameter(description="Only records where this rule fired", examples=[Example(value="ftmo.max_daily_loss")]),
]
OutcomeFilter = Annotated[
    str | None,
    QueryParameter(description="allow, deny, warn, lock, breach, switched, ...", examples=[Example(value="deny")]),
]
KindFilter = Annotated[
    str | None,
    QueryParameter(
        description="decision, enforcement, mode_change, manual_reset", examples=[Example(value="decision")]
    ),
]
# What the audit store's cursors look like (a record position); anything else is a 400 naming `cursor`.
CURSOR_PATTERN = r"^[0-9]{1,18}$"
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="next_cursor of the previous page (digits)", pattern=CURSOR_PATTERN, examples=[Example(value="42")]
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, examples=[Example(value=100)])]


class TradingAccountController(Controller):
    """Trading accounts: registration, modes, pre-trade checks, the state feed, status, audit and reports."""

    path = "/api/trading-accounts"
    tags = ["compliance"]
    guards = TRADING_GUARDS
    dependencies = {"svc": Provide(provide_queries)}

    @post(
        "/",
        summary="Register a trading account",
        description="Traders register their own accounts; a firm's admin registers funded accounts for the firm.",
    )
    async def create(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any],
        data: Annotated[TradingAccountIn, example_body("A trader's own account", {"name": "Main", "broker": "IC Markets", "platform": "MT5", "account_size": "100000", "currency": "USD"})],
    ) -> TradingAccountOut:  # fmt: skip
        """Traders register their own accounts; a firm's admin registers funded accounts for the firm."""
        return account_out(await svc.accounts.create_account(current_user(request), data))

    @get(
        "/",
        summary="List trading accounts",
        description="The caller's own accounts, or with `firm_id` the firm's accounts (firm and platform admins).",
    )
    async def list_accounts(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any],
        firm_id: Annotated[UUID | None, QueryParameter(description="A firm's accounts (its admins only)")] = None,
    ) -> list[TradingAccountOut]:  # fmt: skip
        """The caller's own accounts, or with ``firm_id`` the firm's accounts (firm and platform admins)."""
        return [account_out(a) for a in await svc.accounts.list_accounts(current_user(request), firm_id)]

    @get(
        "/{account_id:uuid}",
        summary="Get a trading account",
        description="The account with its current mode and status (404 unless owner, its firm's admin or platform admin).",
    )
    async def get_account(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID]
    ) -> TradingAccountOut:
        """The account with its current mode and status (404 unless owner, its firm's admin or platform admin)."""
        return account_out(await svc.accounts.get_account(current_user(request), account_id))

    @put(
        "/{account_id:uuid}/mode",
        summary="Switch the compliance mode",
        description="Audited switch (who, when, why). Firm accounts: the firm's admins only; own accounts: the owner.",
    )
    async def set_mode(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        data: Annotated[ModeIn, example_body("Assign a firm profile", {"source": "firm", "profile_id": "acme-challenge", "version": "1", "params": {}, "reason": "Challenge purchased"})],
    ) -> TradingAccountOut:  # fmt: skip
        """Audited switch (who, when, why). Firm accounts: the firm's admins only; own accounts: the owner."""
        return account_out(await svc.set_mode(current_user(request), account_id, data))

    @get(
        "/{account_id:uuid}/mode/history",
        summary="Mode history",
        description="Every mode switch, oldest first.",
    )
    async def mode_history(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID]
    ) -> list[ModeChangeOut]:
        """Every mode switch, oldest first."""
        return [_change_out(c) for c in await svc.history(current_user(request), account_id)]

    @post(
        "/{account_id:uuid}/orders/check",
        status_code=HTTP_200_OK,
        summary="Pre-trade check",
        description="The decision with every rule that fired (values, thresholds, bases, messages). An allowed opening order is reserved against exposure limits until its fill arrives (or 120 s pass).",
    )
    async def check(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        data: Annotated[Order, example_body("Open 1.5 lots EURUSD", _ORDER_EXAMPLE)],
    ) -> DecisionOut:  # fmt: skip
        """The decision with every rule that fired (values, thresholds, bases, messages). An allowed opening
        order is reserved against exposure limits until its fill arrives (or 120 s pass)."""
        decision, sequence, mode = await svc.check(current_user(request), account_id, data)
        return DecisionOut(
            allowed=decision.allowed, outcome=decision.outcome, account_id=account_id, profile_id=mode.profile_id,
            version=mode.version, rules=[rule_out(r) for r in (*decision.fired, *decision.warnings)],
            audit_sequence=sequence,
        )  # fmt: skip

    @post(
        "/{account_id:uuid}/feed",
        status_code=HTTP_200_OK,
        summary="Account-state feed",
        description="Apply equity updates and fills in order; returns warn/lock/flatten/breach actions. State persists.",
    )
    async def feed(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        data: Annotated[FeedIn, example_body("Equity update, open and close", _FEED_EXAMPLE)],
    ) -> FeedOut:  # fmt: skip
        """Apply equity updates and fills in order; returns warn/lock/flatten/breach actions. State persists."""
        result = await svc.feed(current_user(request), account_id, list(data.events))
        return FeedOut(
            account_id=account_id, status=result.status, processed=result.processed,
            actions=[ActionOut(action=a["type"], rule_id=a["rule_id"], message=a["message"], until=a.get("until"),
                               details={"terminal": a.get("terminal", False)}) for a in result.actions],
            rules=[rule_out_dict(r) for r in result.rules],
        )  # fmt: skip

    @post(
        "/{account_id:uuid}/reset",
        status_code=HTTP_200_OK,
        summary="Lift a lock early",
        description="Firm admins (funded accounts) or the owner (own accounts) lift day locks; breaches stay. Audited.",
    )
    async def reset(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        data: Annotated[ResetIn, example_body("Lift the daily lock", {"reason": "Broker price spike, confirmed by support", "rule_id": "acme.max_daily_loss"})],
    ) -> AccountStatusOut:  # fmt: skip
        """Firm admins (funded accounts) or the owner (own accounts) lift day locks; breaches stay. Audited."""
        user = current_user(request)
        await svc.reset(user, account_id, data.reason, data.rule_id)
        return await svc.status(user, account_id)

    @get(
        "/{account_id:uuid}/status",
        summary="Limits, headroom, objectives, locks",
        description="Each limit with current value, threshold and headroom; objectives progress; locks; warnings.",
    )
    async def status(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID]
    ) -> AccountStatusOut:
        """Each limit with current value, threshold and headroom; objectives progress; locks; warnings."""
        return await svc.status(current_user(request), account_id)

    @post(
        "/{account_id:uuid}/dry-run",
        status_code=HTTP_200_OK,
        summary="Dry-run a candidate profile version",
        description="Replay the account's logged inputs of the last N days; returns the decisions that would change.",
    )
    async def dry_run(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        data: Annotated[DryRunIn, example_body("Replay 30 days against version 2", {"source": "firm", "profile_id": "acme-challenge", "version": "2", "days": 30})],
    ) -> DryRunOut:  # fmt: skip
        """Replay the account's logged inputs of the last N days; returns the decisions that would change."""
        return await svc.dry_run(current_user(request), account_id, data)

    @get(
        "/{account_id:uuid}/audit",
        summary="Query the audit log",
        description="Records of the account's hash chain by kind, rule, outcome and time range, keyset-paginated.",
    )
    async def audit(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        kind: KindFilter = None, rule_id: RuleFilter = None, outcome: OutcomeFilter = None, since: Since = None,
        until: Until = None, cursor: Cursor = None, limit: Limit = 100,
        newest_first: Annotated[bool, QueryParameter(description="Page backwards from the latest record")] = False,
    ) -> AuditPageOut:  # fmt: skip
        """Records of the account's hash chain by kind, rule, outcome and time range, keyset-paginated."""
        query = _audit_query(kind, rule_id, outcome, since, until, cursor, limit, newest_first)
        return await svc.audit_page(current_user(request), account_id, query)

    @get(
        "/{account_id:uuid}/audit/export",
        summary="Export the audit log",
        media_type="text/plain",
        description="Every matching record as JSON lines (full records, verifiable offline) or CSV.",
    )
    async def export(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        format: Annotated[str, QueryParameter(pattern="^(jsonl|csv)$", examples=[Example(value="csv")])] = "jsonl",
        kind: KindFilter = None, rule_id: RuleFilter = None, outcome: OutcomeFilter = None, since: Since = None,
        until: Until = None,
    ) -> Response[str]:  # fmt: skip
        """Every matching record as JSON lines (full records, verifiable offline) or CSV."""
        query = _audit_query(kind, rule_id, outcome, since, until, None, 1000, False)
        body = await svc.audit_export(current_user(request), account_id, query, format)
        media = "application/x-ndjson" if format == "jsonl" else "text/csv"
        name = f"audit-{account_id}.{format}"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @get(
        "/{account_id:uuid}/audit/verify",
        summary="Verify the audit chain",
        description="Recompute the chain; any edited, deleted, inserted or reordered record is named with its position.",
    )
    async def verify(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID]
    ) -> VerifyOut:
        """Recompute the chain; any edited, deleted, inserted or reordered record is named with its position."""
        return await svc.verify_account(current_user(request), account_id)

    @get(
        "/{account_id:uuid}/reports/daily",
        summary="Daily compliance report (JSON)",
        description="Equity with the loss floors over the trading day, violations, warnings, objectives.",
    )
    async def daily(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        day: Annotated[dt.date | None, QueryParameter(description="Trading day (default today)", examples=[Example(value="2026-05-12")])] = None,
    ) -> DailyReportOut:  # fmt: skip
        """Equity with the loss floors over the trading day, violations, warnings, objectives."""
        return await svc.daily_report(current_user(request), account_id, day)

    @get(
        "/{account_id:uuid}/reports/daily.html",
        summary="Daily compliance report (HTML)",
        media_type="text/html",
        description="The same report as a page with an inline SVG chart of equity against the floors.",
    )
    async def daily_html(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], account_id: FromPath[UUID],
        day: Annotated[dt.date | None, QueryParameter(description="Trading day (default today)", examples=[Example(value="2026-05-12")])] = None,
    ) -> Response[str]:  # fmt: skip
        """The same report as a page with an inline SVG chart of equity against the floors."""
        report = await svc.daily_report(current_user(request), account_id, day)
        return Response(render_daily_html(report), media_type="text/html; charset=utf-8")


def rule_out_dict(rule: dict[str, Any]) -> Any:
    """A fired rule (plain JSON from the engine) in the API's shape."""
    from service.compliance.schemas import RuleResultOut

    return RuleResultOut(
        rule_id=rule["rule_id"], outcome=rule["outcome"], message=rule["message"], value=rule.get("measured"),
        threshold=rule.get("threshold"), base=rule.get("base"), base_at=rule.get("base_at"),
        reason=rule.get("reason"),
        details={"kind": rule.get("kind"), "comparator": rule.get("comparator"), "base_label": rule.get("base_label"),
                 **(rule.get("extra") or {})},
    )  # fmt: skip
