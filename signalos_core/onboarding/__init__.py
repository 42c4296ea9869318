"""Onboarding: workflows as data, the step state machine, and connection testing with a diagnosis.

A workflow (``default_workflow()``, shipped as YAML; firms add required steps with :func:`extend_workflow`) is a
list of steps with ids, dependencies, required/optional flags and a JSON Schema per form. The
:class:`OnboardingEngine` derives each step's status, blockers, suggestions and progress from the stored
:class:`StepRecord` s and the user's real :class:`Facts`, and applies submissions, skips and changes.

Connection tests (:class:`ConnectionTesters`) return the plugin contract's
:class:`~signalos_core.plugins.ConnectionDiagnosis` - ``dns_failure``, ``refused``, ``timeout``, ``tls_error``,
``bad_credentials``, ``wrong_server``, ``protocol_error`` or ``ok`` with the measured latency and a hint - for
an MT4/MT5 bridge (TCP/TLS), a broker REST API, Telegram/Discord channels, paper trading, or a provider plugin.
See ``docs/onboarding.md``.
"""

from __future__ import annotations

from signalos_core._errors import OnboardingError, StepStateError, StepValidationError, WorkflowError
from signalos_core.onboarding._connect import (
    BRIDGE_PROTOCOL,
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    MTBridgeTester,
    PaperTester,
    TargetPolicy,
)
from signalos_core.onboarding._forms import REDACTED, redact, suggest_defaults, validate_answers
from signalos_core.onboarding._http import BrokerApiTester, DiscordTester, TelegramTester
from signalos_core.onboarding._registry import (
    ConnectionTester,
    ConnectionTesters,
    PaperTradeResult,
    ProviderLookup,
    paper_test_trade,
)
from signalos_core.onboarding._state import (
    Facts,
    OnboardingEngine,
    OnboardingView,
    StepRecord,
    StepStatus,
    StepView,
    SubmitResult,
)
from signalos_core.onboarding._workflow import (
    Constraint,
    FirmStep,
    StepDefinition,
    Suggestion,
    Workflow,
    default_workflow,
    extend_workflow,
    load_workflow,
    parse_workflow,
    validate_firm_step,
)

__all__ = [
    "BRIDGE_PROTOCOL",
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "REDACTED",
    "BrokerApiTester",
    "ConnectionTester",
    "ConnectionTesters",
    "Constraint",
    "DiscordTester",
    "Facts",
    "FirmStep",
    "MTBridgeTester",
    "OnboardingEngine",
    "OnboardingError",
    "OnboardingView",
    "PaperTester",
    "PaperTradeResult",
    "ProviderLookup",
    "StepDefinition",
    "StepRecord",
    "StepStateError",
    "StepStatus",
    "StepValidationError",
    "StepView",
    "SubmitResult",
    "Suggestion",
    "TargetPolicy",
    "TelegramTester",
    "Workflow",
    "WorkflowError",
    "default_workflow",
    "extend_workflow",
    "load_workflow",
    "paper_test_trade",
    "parse_workflow",
    "redact",
    "suggest_defaults",
    "validate_answers",
    "validate_firm_step",
]
