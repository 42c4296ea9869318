"""SignalOS compliance engine: firm and regulator profiles (YAML) compiled to rules, pre-trade checks and
monitoring with explanations, on a compiled-Python or a durable-rules backend.

Typical use::

    from signalos_core.compliance import Engine, load_builtin_profile
    engine = Engine(load_builtin_profile("ftmo-2step-challenge"))
    decision = engine.check(state, order)          # Decision: allowed + every fired rule with numbers
    enforcement = engine.observe(state, event)     # Enforcement: actions + next state

The public API is exactly ``__all__`` (pinned by a test); modules starting with ``_`` are private.
"""

from __future__ import annotations

from signalos_core.compliance._api import (
    BuiltinProfileInfo,
    available_backends,
    check,
    list_builtin_profiles,
    load_builtin_profile,
    observe,
)
from signalos_core.compliance._builtin import builtin_rulesets_dir
from signalos_core.compliance._decision import Action, Decision, Enforcement, FiredRule, ObjectiveStatus, ProfileRef
from signalos_core.compliance._engine import BACKENDS, Engine
from signalos_core.compliance._instruments import Instrument, InstrumentCatalog, default_catalog
from signalos_core.compliance._loader import load_profile, profile_hash
from signalos_core.compliance._models import (
    AccountState,
    ClockEvent,
    ClosedTrade,
    DailyPnl,
    DaySnapshot,
    DayTrade,
    EodBalance,
    EquityUpdate,
    Event,
    Fill,
    HighWaterMarks,
    Lock,
    NewsEvent,
    Order,
    PendingOrder,
    Position,
)
from signalos_core.compliance._profile import DayBoundary, ParameterSpec, Profile, RuleSpec, SourceRef
from signalos_core.compliance._registry import kind_names
from signalos_core.compliance._schema import profile_json_schema
from signalos_core.compliance._yaml import ProfileIssue

__all__ = [
    "BACKENDS",
    "AccountState",
    "Action",
    "BuiltinProfileInfo",
    "ClockEvent",
    "ClosedTrade",
    "DailyPnl",
    "DayBoundary",
    "DaySnapshot",
    "DayTrade",
    "Decision",
    "Enforcement",
    "Engine",
    "EodBalance",
    "EquityUpdate",
    "Event",
    "Fill",
    "FiredRule",
    "HighWaterMarks",
    "Instrument",
    "InstrumentCatalog",
    "Lock",
    "NewsEvent",
    "ObjectiveStatus",
    "Order",
    "ParameterSpec",
    "PendingOrder",
    "Position",
    "Profile",
    "ProfileIssue",
    "ProfileRef",
    "RuleSpec",
    "SourceRef",
    "available_backends",
    "builtin_rulesets_dir",
    "check",
    "default_catalog",
    "kind_names",
    "list_builtin_profiles",
    "load_builtin_profile",
    "load_profile",
    "observe",
    "profile_hash",
    "profile_json_schema",
]
