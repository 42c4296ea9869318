"""The public API of signalos_core.onboarding is exactly this list (changes are deliberate)."""

from __future__ import annotations

from signalos_core import onboarding

EXPECTED = {
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
}


def test_public_api_is_pinned() -> None:
    assert set(onboarding.__all__) == EXPECTED
    assert len(onboarding.__all__) == len(EXPECTED)
    for name in onboarding.__all__:
        assert getattr(onboarding, name) is not None
        if callable(getattr(onboarding, name)) and not name.isupper() and name != "ProviderLookup":  # a type alias
            assert getattr(onboarding, name).__doc__, name


def test_errors_live_in_the_single_tree() -> None:
    from signalos_core import SignalOSError, _errors

    for name in ("OnboardingError", "WorkflowError", "StepValidationError", "StepStateError"):
        error = getattr(onboarding, name)
        assert error is getattr(_errors, name)
        assert issubclass(error, SignalOSError)
        assert name in (_errors.__doc__ or "")
    assert issubclass(onboarding.WorkflowError, ValueError)
    assert issubclass(onboarding.StepValidationError, ValueError)


def test_diagnosis_is_the_plugin_contract() -> None:
    from signalos_core.onboarding._connect import diagnosis
    from signalos_core.plugins import ConnectionDiagnosis, ConnectionStatus

    assert isinstance(diagnosis(ConnectionStatus.OK), ConnectionDiagnosis)
