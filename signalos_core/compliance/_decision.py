"""Decision and Enforcement: what the engine returns, serialisable to plain JSON for the audit trail.

Every fired rule carries its id, the measured value, the threshold, the comparator, the base it was computed
from and when, and a human message ("equity 94,999.99 < floor 95,000.00 (base 100,000.00 at 2026-05-12 00:00
Europe/Prague)"). Both objects carry the profile id, version and content hash and the backend name, so a record
says exactly which rules decided it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

import msgspec

from signalos_core.compliance._models import AccountState
from signalos_core.compliance._profile import OutcomeClass

__all__ = ["Action", "Decision", "Enforcement", "FiredRule", "ObjectiveStatus", "ProfileRef"]


class _Out(msgspec.Struct, frozen=True, kw_only=True):
    """Base for results: immutable; ``to_dict()`` gives plain JSON types (Decimal as string)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (Decimals and datetimes as strings)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys)."""
        return msgspec.json.encode(self, order="sorted")


class ProfileRef(_Out, frozen=True, kw_only=True):
    """Which profile version decided: id, version, sha256 of its canonical form, and the backend used."""

    id: str
    version: str
    hash: str
    backend: str


class FiredRule(_Out, frozen=True, kw_only=True):
    """One rule that fired. ``reason``: ``violated``, ``missing_input`` (fail closed), ``locked``/``breached``
    (an active lock from an earlier decision), ``warning`` (a warn threshold was reached) or ``passed`` (in
    ``evaluated`` only: the rule was measured and held, with its numbers for the explanation)."""

    rule_id: str
    kind: str
    outcome: OutcomeClass
    reason: Literal["violated", "missing_input", "locked", "breached", "warning", "passed"]
    message: str
    measured: Decimal | None = None
    threshold: Decimal | None = None
    comparator: str | None = None
    #: Distance to the limit in the limit's direction (negative = past it), e.g. -0.01 for equity one cent
    #: below a floor; ``None`` for rules without a numeric limit.
    headroom: Decimal | None = None
    base: Decimal | None = None
    base_label: str = ""
    base_at: dt.datetime | None = None
    missing_field: str | None = None
    extra: dict[str, str] = msgspec.field(default_factory=dict)


class ObjectiveStatus(_Out, frozen=True, kw_only=True):
    """Progress of an objective rule (never a failure): ``met``, ``not_met`` or ``missing_input``."""

    rule_id: str
    status: Literal["met", "not_met", "missing_input"]
    message: str
    measured: Decimal | None = None
    threshold: Decimal | None = None
    extra: dict[str, str] = msgspec.field(default_factory=dict)


class Decision(_Out, frozen=True, kw_only=True):
    """Result of a pre-trade :meth:`Engine.check`: allowed or not, and *every* rule that fired."""

    allowed: bool
    at: dt.datetime
    profile: ProfileRef
    fired: list[FiredRule]
    warnings: list[FiredRule] = msgspec.field(default_factory=list)
    evaluated: list[FiredRule] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)

    @property
    def rule_ids(self) -> list[str]:
        """Ids of the rules that block the order, in profile order."""
        return [f.rule_id for f in self.fired]

    @property
    def outcome(self) -> Literal["allow", "deny"]:
        """``allow`` or ``deny``."""
        return "allow" if self.allowed else "deny"


class Action(_Out, frozen=True, kw_only=True):
    """An enforcement action: ``breach`` (terminal if ``terminal``), ``lock`` until ``until``, ``flatten``
    (close all positions), ``warn``, ``violation`` (a counted, non-terminal breach) or ``unlock``."""

    type: Literal["breach", "violation", "lock", "flatten", "warn", "unlock"]
    rule_id: str
    message: str
    until: dt.datetime | None = None
    terminal: bool = False


class Enforcement(_Out, frozen=True, kw_only=True):
    """Result of :meth:`Engine.observe`: actions, fired rules, objective progress and the next state."""

    outcome: Literal["allow", "warn", "lock", "breach"]
    at: dt.datetime
    profile: ProfileRef
    actions: list[Action]
    fired: list[FiredRule]
    warnings: list[FiredRule]
    objectives: list[ObjectiveStatus]
    next_state: AccountState
    evaluated: list[FiredRule] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)

    @property
    def rule_ids(self) -> list[str]:
        """Ids of the rules that fired (excluding warnings)."""
        return [f.rule_id for f in self.fired]
