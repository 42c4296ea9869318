"""Request and response bodies of the compliance area (msgspec; unknown request fields are refused).

Orders and feed events are the engine's own documented Structs (:mod:`signalos_core.compliance`), so the HTTP
contract and the library contract cannot drift apart. Money is a decimal string in JSON (``"100000.00"``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from service.system.openapi import POSITIVE_DECIMAL_PATTERN
from signalos_core.compliance import EquityUpdate, Fill

__all__ = [
    "AccountStatusOut",
    "ActionOut",
    "AuditPageOut",
    "AuditRecordOut",
    "BuiltinProfileOut",
    "DailyReportOut",
    "DecisionOut",
    "DryRunChangeOut",
    "DryRunIn",
    "DryRunOut",
    "FeedIn",
    "FeedOut",
    "FirmReportOut",
    "LimitOut",
    "LockOut",
    "ModeChangeOut",
    "ModeIn",
    "ModeOut",
    "ObjectiveOut",
    "ProfileIn",
    "ProfileVersionOut",
    "ResetIn",
    "RuleResultOut",
    "TradingAccountIn",
    "TradingAccountOut",
    "VerifyIssueOut",
    "VerifyOut",
]

Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", examples=["USD"])]
Reason = Annotated[
    str, msgspec.Meta(min_length=3, max_length=1000, examples=["Passed phase 1; moving to verification"])
]
ProfileIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["ftmo-2step-challenge"])]
VersionText = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["2026.1"])]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of request bodies: unknown fields are errors, not silently ignored."""


class _Out(msgspec.Struct, kw_only=True):
    """Base of response bodies."""


# ----------------------------------------------------------------------------------------- trading accounts
class TradingAccountIn(_In):
    """Register a trading account. A trader registers their own; a firm admin may register a funded account
    for one of the firm's traders by giving ``owner_id`` and the firm's ``firm_id``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["FTMO 100k challenge"])]
    broker: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["FTMO Global Markets"])]
    platform: Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["MT5"])]
    # Decimal text checked by msgspec against the documented pattern (a Decimal field would also take a JSON
    # number and accept no bounds); the service turns it into a Decimal. 32 characters fit the 40 of the column.
    account_size: Annotated[
        str,
        msgspec.Meta(
            pattern=POSITIVE_DECIMAL_PATTERN, max_length=32, examples=["100000"], description="Positive decimal"
        ),
    ]
    currency: Currency = "USD"
    owner_id: UUID | None = None
    firm_id: UUID | None = None


class TradingAccountOut(_Out):
    """A trading account with its current mode and enforcement status (``active``, ``locked``, ``breached``)."""

    id: UUID
    owner_id: UUID
    firm_id: UUID | None
    name: str
    broker: str
    platform: str
    account_size: Decimal
    currency: str
    status: str
    mode: ModeOut | None
    created_at: dt.datetime


# ------------------------------------------------------------------------------------------------- modes
class ModeIn(_In):
    """Switch an account's compliance mode.

    ``source``: ``builtin`` (a shipped firm or regulatory profile), ``firm`` (a version the account's firm
    uploaded) or ``personal`` (a version the caller uploaded). ``version`` defaults to the newest version in
    effect today. ``params`` override profile parameters (e.g. ``account_size``). ``profile_id: null`` removes
    the mode. ``reason`` is required: every switch is audited with who, when and why.
    """

    source: Literal["builtin", "firm", "personal"]
    profile_id: ProfileIdText | None
    reason: Reason
    version: VersionText | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class ModeOut(_Out):
    """The mode in force: kind (``firm``, ``regulatory``, ``personal``), source, profile id and version."""

    kind: str
    source: str
    profile_id: str
    version: str
    params: dict[str, Any]
    changed_at: dt.datetime | None


class ModeChangeOut(_Out):
    """One entry of an account's mode history."""

    id: UUID
    kind: str | None
    source: str | None
    profile_id: str | None
    version: str | None
    params: dict[str, Any]
    previous_profile_id: str | None
    previous_version: str | None
    actor_id: UUID
    actor_role: str
    reason: str
    changed_at: dt.datetime


# ---------------------------------------------------------------------------------------------- profiles
class ProfileIn(_In):
    """Upload a profile version as YAML text (see docs/profile-authoring.md)."""

    yaml: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=512_000,
            examples=[
                "id: acme-challenge\nversion: '1'\neffective_from: 2026-01-01\n"
                "day_boundary: {timezone: Europe/Prague, at: '00:00'}\nrules: []\n"
            ],
        ),
    ]


class ProfileVersionOut(_Out):
    """A stored profile version. ``in_use`` versions are immutable."""

    id: UUID
    scope: str
    firm_id: UUID | None
    owner_id: UUID | None
    profile_id: str
    version: str
    title: str
    effective_from: dt.date
    content_hash: str
    created_at: dt.datetime
    in_use: bool
    yaml: str | None = None


class BuiltinProfileOut(_Out):
    """A profile shipped with SignalOS; ``kind`` is ``regulatory`` for regulator regimes, else ``firm``."""

    profile_id: str
    version: str
    title: str
    kind: str
    effective_from: dt.date


class DryRunIn(_In):
    """Replay the account's logged inputs of the last ``days`` days against a candidate profile version."""

    source: Literal["builtin", "firm", "personal"]
    profile_id: ProfileIdText
    version: VersionText | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30


class DryRunChangeOut(_Out):
    """One logged decision that the candidate would decide differently."""

    sequence: int
    recorded_at: dt.datetime
    kind: str
    outcome_before: str | None
    outcome_after: str | None
    rules_added: list[str]
    rules_removed: list[str]
    rules_changed: list[dict[str, Any]]


class DryRunOut(_Out):
    """Totals and the decisions that would change."""

    profile_id: str
    version: str
    considered: int
    replayed: int
    unchanged: int
    skipped: int
    changed: list[DryRunChangeOut]
    errors: list[dict[str, Any]]


# ------------------------------------------------------------------------------------------- enforcement
class RuleResultOut(_Out):
    """A rule that fired: its outcome class, measured value against threshold, base and a human message."""

    rule_id: str
    outcome: str
    message: str
    value: Any = None
    threshold: Any = None
    base: Any = None
    base_at: Any = None
    reason: str | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class DecisionOut(_Out):
    """A pre-trade decision: ``allowed`` and every rule that fired (all violations, not the first)."""

    allowed: bool
    outcome: str
    account_id: UUID
    profile_id: str
    version: str
    rules: list[RuleResultOut]
    audit_sequence: int


class ActionOut(_Out):
    """An enforcement action: ``warn``, ``lock`` (with ``until``), ``flatten`` or ``breach``."""

    action: str
    rule_id: str
    message: str
    until: dt.datetime | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class FeedIn(_In):
    """Account-state feed: equity updates, fills and closes (fills with ``action: close``), oldest first."""

    events: Annotated[list[EquityUpdate | Fill], msgspec.Meta(min_length=1, max_length=500)]


class FeedOut(_Out):
    """What the feed caused: every action, per event, and the account's status afterwards."""

    account_id: UUID
    status: str
    actions: list[ActionOut]
    rules: list[RuleResultOut]
    processed: int


class ResetIn(_In):
    """Lift a lock before its expiry (firm admin or platform admin); audited with the reason. Breaches stay."""

    reason: Reason
    rule_id: str | None = None


class LimitOut(_Out):
    """One limit: where the account stands against it."""

    rule_id: str
    kind: str
    outcome: str
    comparator: str | None
    value: Any
    threshold: Any
    headroom: Any
    usage: Any
    message: str


class ObjectiveOut(_Out):
    """Progress towards an objective (never a failure)."""

    rule_id: str
    kind: str
    value: Any
    target: Any
    progress: Any
    met: bool
    message: str


class LockOut(_Out):
    """An active lock or breach."""

    rule_id: str
    kind: str
    since: dt.datetime
    until: dt.datetime | None
    reason: str


class AccountStatusOut(_Out):
    """Each limit with value, threshold and headroom; objectives; active locks; warnings."""

    account_id: UUID
    status: str
    as_of: dt.datetime | None
    profile_id: str | None
    version: str | None
    balance: Decimal
    equity: Decimal | None
    limits: list[LimitOut]
    objectives: list[ObjectiveOut]
    locks: list[LockOut]
    warnings: list[RuleResultOut]


# ------------------------------------------------------------------------------------------------- audit
class AuditRecordOut(_Out):
    """One audit record as stored (``hash`` chains it to ``prev_hash``)."""

    chain_id: str
    sequence: int
    recorded_at: dt.datetime
    kind: str
    account_id: str | None
    profile_id: str | None
    profile_version: str | None
    profile_hash: str | None
    backend: str | None
    input_digest: str | None
    outcome: str | None
    rules: list[Any]
    actor: str | None
    reason: str | None
    details: Any
    hash: str
    prev_hash: str


class AuditPageOut(_Out):
    """A page of records; pass ``next_cursor`` as ``cursor`` for the next page (None on the last)."""

    items: list[AuditRecordOut]
    next_cursor: str | None


class VerifyIssueOut(_Out):
    """Where a chain was tampered with: kind, position in append order, and sequence number."""

    kind: str
    position: int
    sequence: int | None
    detail: str


class VerifyOut(_Out):
    """Verification of one or more chains; ``ok`` only if every chain is intact."""

    ok: bool
    chains: list[dict[str, Any]]


# ----------------------------------------------------------------------------------------------- reports
class DailyReportOut(_Out):
    """A trading day of one account: equity series with floors, violations, warnings, objectives."""

    account_id: UUID
    day: dt.date
    timezone: str
    start: dt.datetime
    end: dt.datetime
    profile_id: str | None
    version: str | None
    status: str
    points: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    objectives: list[ObjectiveOut]
    decisions: dict[str, int]


class FirmReportOut(_Out):
    """The firm's accounts: breached, locked and near-limit ones, with counts."""

    firm_id: UUID
    generated_at: dt.datetime
    accounts: int
    breached: list[dict[str, Any]]
    locked: list[dict[str, Any]]
    near_limit: list[dict[str, Any]]
    near_limit_threshold: Decimal
