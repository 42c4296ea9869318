"""Profile data types: the strict msgspec Structs a firm's YAML profile decodes into.

A profile is authored in YAML (see ``docs/profile-authoring.md``); :mod:`._loader` turns the text into these
Structs, reporting every problem at once. Rule ``params`` stay a mapping here because their shape depends on the
rule ``kind``; the loader validates them against the kind's own params Struct (see :mod:`._registry`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "Comparator",
    "DayBoundary",
    "OutcomeClass",
    "ParameterSpec",
    "Profile",
    "RuleSpec",
    "SourceRef",
]

#: ``lt``: fires when measured < threshold; ``le``: measured <= threshold (a limit *reached* fires), etc.
Comparator = Literal["lt", "le", "gt", "ge"]
#: What a fired rule does: refuse the order, fail the account, lock until a reset, warn, or report progress.
OutcomeClass = Literal["deny", "breach", "lock", "warn", "objective"]

_RULE_ID = r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-]*)+$"
_PROFILE_ID = r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-]*)*$"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

RuleId = Annotated[str, msgspec.Meta(pattern=_RULE_ID, description="Stable dotted rule id, e.g. ftmo.max_loss")]
ProfileId = Annotated[str, msgspec.Meta(pattern=_PROFILE_ID, description="Profile id, e.g. ftmo-2step-challenge")]
HHMM = Annotated[str, msgspec.Meta(pattern=_HHMM, description="Local wall-clock time HH:MM (quote it in YAML)")]
Fraction = Annotated[Decimal, msgspec.Meta(description="A fraction of the limit between 0 and 1, e.g. 0.8")]


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base for profile Structs: immutable, keyword-only, unknown keys are errors (typos must not pass)."""


class DayBoundary(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """When the firm's trading day starts: a wall-clock time in a named IANA zone (DST-correct)."""

    timezone: Annotated[str, msgspec.Meta(description="IANA zone name, e.g. Europe/Prague; never an offset")]
    at: HHMM = "00:00"


class SourceRef(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a rule comes from; ``confidence`` says how far it was verified."""

    url: Annotated[str, msgspec.Meta(pattern=r"^https?://", description="Source page")]
    title: str = ""
    confidence: Literal["official", "secondary", "third_party"] = "official"
    retrieved: dt.date | None = None


class ParameterSpec(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A typed, defaulted profile parameter; rules refer to it as ``${name}`` (or ``${name * 0.05}``)."""

    type: Literal["money", "decimal", "integer", "string", "boolean"]
    default: Annotated[Any, msgspec.Meta(description="Default value; must match `type`")] = None
    description: str = ""


class RuleSpec(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One rule: a stable id, a kind from the documented library, its params, comparator and outcome."""

    id: RuleId
    kind: str
    outcome: OutcomeClass
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    breach_when: Comparator | None = None
    warn_at: list[Fraction] = msgspec.field(default_factory=list)
    terminal: bool = True
    flatten: bool | None = None
    #: Grandfathering: the rule applies only to accounts opened (or reset) in [from, before). An account
    #: whose ``created_at`` is unknown gets the rule (the stricter reading) unless ``if_created_unknown`` is
    #: ``skip`` (a rule kept only for legacy accounts of a profile that describes the new regime).
    accounts_created_from: dt.datetime | None = None
    accounts_created_before: dt.datetime | None = None
    if_created_unknown: Literal["apply", "skip"] = "apply"
    description: str = ""
    sources: list[SourceRef] = msgspec.field(default_factory=list)


class Profile(_Strict, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A compliance profile version, after ``extends`` and parameter references have been resolved."""

    id: ProfileId
    version: Annotated[str, msgspec.Meta(min_length=1)]
    effective_from: dt.date
    title: str = ""
    effective_until: dt.date | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None
    sources: list[SourceRef] = msgspec.field(default_factory=list)
    parameters: dict[str, ParameterSpec] = msgspec.field(default_factory=dict)
    extends: ProfileId | None = None
    remove_rules: list[RuleId] = msgspec.field(default_factory=list)
    day_boundary: DayBoundary
    rules: list[RuleSpec] = msgspec.field(default_factory=list)
    notes: str = ""

    def rule(self, rule_id: str) -> RuleSpec:
        """Return the rule with ``rule_id`` (``KeyError`` if the profile has none)."""
        for spec in self.rules:
            if spec.id == rule_id:
                return spec
        raise KeyError(rule_id)
