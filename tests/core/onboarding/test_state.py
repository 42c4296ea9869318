"""The onboarding state machine: statuses, blockers, progress, facts, skip, change, suggestions, constraints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.onboarding import (
    REDACTED,
    ConnectionTesters,
    Facts,
    OnboardingEngine,
    StepRecord,
    StepStateError,
    StepStatus,
    StepValidationError,
    TargetPolicy,
    default_workflow,
)
from signalos_core.plugins import ConnectionStatus
from tests.core.onboarding.conftest import (
    BRIDGE_LOGIN,
    BRIDGE_PASSWORD,
    BRIDGE_SERVER,
    TELEGRAM_TOKEN,
    HttpApi,
    LoopbackServers,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NO_FACTS = Facts()

ANSWERS: dict[str, dict[str, Any]] = {
    "profile": {"display_name": "Alice", "timezone": "Europe/London", "experience": "intermediate"},
    "verify_email": {"code": "483920"},
    "enable_2fa": {"code": "123456"},
    "signal_source": {"kind": "telegram", "channel": "@signals_room", "bot_token": TELEGRAM_TOKEN},
    "broker": {"kind": "paper", "starting_balance": "100000", "currency": "USD"},
    "compliance": {"mode": "prop_firm", "profile_id": "ftmo-2step-challenge", "account_size": "100000"},
    "risk_settings": {"lot_sizing": "fixed", "fixed_lots": "0.10", "max_lots": "1.00", "daily_loss_limit": "5000"},
    "paper_test_trade": {"symbol": "EURUSD", "side": "buy", "lots": "0.10", "price": "1.08512"},
    "done": {},
}


@pytest.fixture
def engine(http_api: HttpApi) -> OnboardingEngine:
    testers = ConnectionTesters(policy=TargetPolicy(allow_private=True), telegram_api=f"{http_api.base}/telegram")
    return OnboardingEngine(default_workflow(), testers)


class Run:
    """Records of one user, applied the way the service applies them."""

    def __init__(self, engine: OnboardingEngine, facts: Facts = NO_FACTS) -> None:
        self.engine = engine
        self.facts = facts
        self.records: dict[str, StepRecord] = {}
        self.now = T0

    def tick(self, minutes: int = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now

    def submit(self, step_id: str, answers: dict[str, Any] | None = None) -> Any:
        result = asyncio.run(
            self.engine.submit(
                self.records, self.facts, step_id, ANSWERS[step_id] if answers is None else answers, now=self.tick()
            )
        )
        self.records[step_id] = result.record
        for other in result.invalidated:
            self.records[other] = self.engine.mark_for_review(self.records[other], now=self.now)
        return result

    def skip(self, step_id: str) -> None:
        self.records[step_id] = self.engine.skip(self.records, self.facts, step_id, now=self.tick())

    def status(self, step_id: str) -> StepStatus:
        return next(s for s in self.view().steps if s.id == step_id).status

    def step(self, step_id: str) -> Any:
        return next(s for s in self.view().steps if s.id == step_id)

    def view(self) -> Any:
        return self.engine.view(self.records, self.facts, started_at=T0)


def test_fresh_state(engine: OnboardingEngine) -> None:
    run = Run(engine)
    view = run.view()
    assert view.progress_percent == 0
    assert view.current_step == "profile"
    assert not view.completed
    statuses = {s.id: s.status for s in view.steps}
    assert statuses["profile"] is StepStatus.AVAILABLE
    assert statuses["broker"] is StepStatus.LOCKED
    assert run.step("broker").blocked_by == ["profile"]
    assert "enable_2fa" not in view.required_remaining
    assert run.step("done").blocked_by[:2] == ["profile", "verify_email"]
    assert run.step("profile").suggested == {"timezone": "UTC", "experience": "beginner"}


def test_whole_flow_with_proofs(engine: OnboardingEngine) -> None:
    run = Run(engine)
    progress = []
    for step_id in ANSWERS:
        if step_id == "enable_2fa":
            run.skip(step_id)
        else:
            run.submit(step_id)
        progress.append(run.view().progress_percent)
    view = run.view()
    assert view.completed
    assert view.progress_percent == 100
    assert view.current_step is None
    assert progress == sorted(progress)
    assert progress[-2] < 100
    email = run.step("verify_email")
    assert email.verified_by == "submitted_proof"
    assert email.note is not None
    assert "proof" in email.note
    source = run.step("signal_source")
    assert source.answers["bot_token"] == REDACTED
    assert source.result["status"] == "ok"
    trade = run.step("paper_test_trade").result
    assert trade["status"] == "closed"
    assert trade["open_price"] == "1.08512"
    assert run.step("enable_2fa").status is StepStatus.SKIPPED
    # timings: every step became available one minute before it was completed
    assert run.step("profile").time_spent_s == 60.0
    assert run.step("broker").time_spent_s is not None


def test_validation_names_every_field(engine: OnboardingEngine) -> None:
    run = Run(engine)
    with pytest.raises(StepValidationError) as caught:
        run.submit("profile", {"timezone": "Mars/Olympus_Mons", "colour": "red", "experience": "guru"})
    fields = {error["field"] for error in caught.value.errors}
    assert fields == {"display_name", "timezone", "colour", "experience"}
    assert caught.value.step_id == "profile"


def test_conditional_form_fields(engine: OnboardingEngine) -> None:
    run = Run(engine)
    run.submit("profile")
    with pytest.raises(StepValidationError) as caught:
        run.submit("broker", {"kind": "mt_bridge", "host": "x", "port": 70000, "starting_balance": "1"})
    fields = {error["field"] for error in caught.value.errors}
    assert {"port", "platform", "login", "password", "server"} <= fields
    valid_bridge = {
        "kind": "mt_bridge",
        "host": "bridge.example.com",
        "port": 4443,
        "platform": "mt5",
        "login": "1234567",
        "password": "pw",
        "server": "Demo",
    }
    with pytest.raises(StepValidationError) as caught:
        run.submit("broker", {**valid_bridge, "starting_balance": "1"})
    assert caught.value.errors == [{"field": "starting_balance", "message": "is not a field of this form"}]
    with pytest.raises(StepValidationError) as caught:
        run.submit("broker", {"kind": "paper", "starting_balance": "0", "currency": "USD"})
    assert caught.value.errors == [{"field": "starting_balance", "message": "must be a valid positive-decimal"}]


def test_blocked_unknown_and_not_skippable(engine: OnboardingEngine) -> None:
    run = Run(engine)
    with pytest.raises(StepStateError) as blocked:
        run.submit("broker")
    assert blocked.value.reason == "blocked"
    assert blocked.value.blocked_by == ["profile"]
    with pytest.raises(StepStateError) as unknown:
        run.submit("teleport", {})
    assert unknown.value.reason == "unknown_step"
    with pytest.raises(StepStateError) as required:
        run.skip("profile")
    assert required.value.reason == "not_skippable"
    with pytest.raises(StepStateError) as final:
        run.skip("done")
    assert final.value.reason == "not_skippable"
    with pytest.raises(StepStateError) as early:
        run.skip("enable_2fa")
    assert early.value.reason == "blocked"
    with pytest.raises(StepStateError) as done_early:
        run.submit("done")
    assert done_early.value.reason == "blocked"


def test_firm_requiring_2fa_makes_the_step_required(engine: OnboardingEngine) -> None:
    run = Run(engine, Facts(firm_requires_2fa=True, two_factor_enabled=False, email_verified=True))
    run.submit("profile")
    assert run.step("enable_2fa").required
    with pytest.raises(StepStateError) as caught:
        run.skip("enable_2fa")
    assert "firm requires" in str(caught.value)
    with pytest.raises(StepStateError) as missing:
        run.submit("enable_2fa", {})
    assert missing.value.reason == "fact_missing"
    assert "enable_2fa" in run.view().required_remaining


def test_real_facts_complete_steps(engine: OnboardingEngine) -> None:
    run = Run(engine, Facts(email_verified=True, two_factor_enabled=True))
    assert run.engine.auto_completions(run.records, run.facts, T0) == {}  # verify_email waits for profile
    run.submit("profile")
    auto = run.engine.auto_completions(run.records, run.facts, run.now)
    assert set(auto) == {"verify_email", "enable_2fa"}
    run.records.update(auto)
    assert run.engine.auto_completions(run.records, run.facts, run.now) == {}
    assert run.step("verify_email").verified_by == "server_state"
    assert run.step("enable_2fa").status is StepStatus.COMPLETED
    # the proof is not needed when the server knows; submitting again is accepted and says so
    assert run.submit("verify_email", {}).record.verified_by == "server_state"
    # 2FA switched off later: the step is open again
    run.facts = Facts(email_verified=True, two_factor_enabled=False)
    assert run.status("enable_2fa") is StepStatus.AVAILABLE


def test_email_not_verified_and_no_proof(engine: OnboardingEngine) -> None:
    run = Run(engine, Facts(email_verified=False))
    run.submit("profile")
    with pytest.raises(StepStateError) as caught:
        run.submit("verify_email")
    assert caught.value.reason == "fact_missing"
    run.facts = NO_FACTS
    with pytest.raises(StepValidationError) as proof:
        run.submit("verify_email", {})
    assert proof.value.errors[0]["field"] == "code"


def test_suggestions_from_earlier_answers(engine: OnboardingEngine) -> None:
    run = Run(engine)
    for step_id in ("profile", "verify_email", "signal_source", "broker"):
        run.submit(step_id)
    assert run.step("compliance").suggested == {"account_size": "100000"}
    run.submit("compliance", {"mode": "prop_firm", "profile_id": "ftmo-2step-challenge", "account_size": "250000"})
    suggested = run.step("risk_settings").suggested
    assert suggested["max_lots"] == "2.50"
    assert suggested["daily_loss_limit"] == "12500.00"
    run.submit("compliance", {"mode": "prop_firm", "profile_id": "ftmo-2step-challenge", "account_size": "500"})
    assert run.step("risk_settings").suggested["max_lots"] == "0.01"  # floor at the minimum lot
    run.submit("compliance", {"mode": "regulatory", "regime": "esma_retail"})
    assert "max_lots" not in run.step("risk_settings").suggested  # no size: no guess


def test_constraints_across_fields_and_steps(engine: OnboardingEngine) -> None:
    run = Run(engine)
    for step_id in ("profile", "verify_email", "signal_source", "broker", "compliance"):
        run.submit(step_id)
    with pytest.raises(StepValidationError) as caught:
        run.submit("risk_settings", {"lot_sizing": "fixed", "fixed_lots": "2", "max_lots": "1"})
    assert caught.value.errors == [{"field": "fixed_lots", "message": "must be at most max_lots (1)"}]
    with pytest.raises(StepValidationError) as missing:
        run.submit("risk_settings", {"lot_sizing": "fixed", "max_lots": "1"})
    assert missing.value.errors[0]["field"] == "fixed_lots"
    run.submit("risk_settings")
    with pytest.raises(StepValidationError) as too_big:
        run.submit("paper_test_trade", {**ANSWERS["paper_test_trade"], "lots": "1.01"})
    assert too_big.value.errors[0]["field"] == "lots"
    assert "risk_settings.max_lots" in too_big.value.errors[0]["message"]


def test_going_back_invalidates_dependents(engine: OnboardingEngine) -> None:
    run = Run(engine)
    for step_id in ("profile", "verify_email", "signal_source", "broker", "compliance", "risk_settings"):
        run.submit(step_id)
    same = run.submit("compliance")  # same answers: nothing to review
    assert same.invalidated == ()
    changed = run.submit("compliance", {**ANSWERS["compliance"], "account_size": "50000"})
    assert changed.invalidated == ("risk_settings",)
    risk = run.step("risk_settings")
    assert risk.status is StepStatus.NEEDS_REVIEW
    assert risk.suggested["fixed_lots"] == "0.10"  # the previous answer, to confirm in one click
    assert run.view().current_step == "risk_settings"
    assert "risk_settings" in run.step("done").blocked_by or run.step("done").status is StepStatus.LOCKED
    with pytest.raises(StepStateError):
        run.submit("paper_test_trade")  # waits for the reviewed risk settings
    run.submit("risk_settings")
    assert run.status("risk_settings") is StepStatus.COMPLETED
    # completion time is the first one: a change does not reset the funnel timing
    assert run.step("compliance").completed_at < run.now


def test_changing_broker_sends_paper_trade_back(engine: OnboardingEngine) -> None:
    run = Run(engine)
    for step_id in ("profile", "verify_email", "signal_source", "broker", "compliance", "risk_settings"):
        run.submit(step_id)
    run.submit("paper_test_trade")
    result = run.submit("broker", {"kind": "paper", "starting_balance": "5000", "currency": "EUR"})
    assert set(result.invalidated) == {"compliance", "paper_test_trade"}


def test_connection_failure_blocks_completion(engine: OnboardingEngine, loopback: LoopbackServers) -> None:
    run = Run(engine)
    run.submit("profile")
    answers = {
        "kind": "mt_bridge",
        "host": "127.0.0.1",
        "port": loopback.closed_port(),
        "platform": "mt5",
        "login": BRIDGE_LOGIN,
        "password": BRIDGE_PASSWORD,
        "server": BRIDGE_SERVER,
    }
    with pytest.raises(StepStateError) as caught:
        run.submit("broker", answers)
    assert caught.value.reason == "connection_failed"
    assert caught.value.diagnosis.status is ConnectionStatus.REFUSED
    assert "broker" not in run.records
    ok = run.submit("broker", {**answers, "port": loopback.bridge()})
    assert ok.diagnosis is not None
    assert ok.diagnosis.ok
    assert ok.record.answers["password"] == REDACTED
    assert BRIDGE_PASSWORD not in str(run.view())


def test_on_demand_connection_test(engine: OnboardingEngine) -> None:
    result = asyncio.run(engine.test_connection("broker", ANSWERS["broker"]))
    assert result.ok
    with pytest.raises(StepStateError) as caught:
        asyncio.run(engine.test_connection("profile", {}))
    assert caught.value.reason == "no_connection"
    with pytest.raises(StepValidationError):
        asyncio.run(engine.test_connection("broker", {"kind": "fax"}))


def test_skipped_optional_step_can_be_answered_later(engine: OnboardingEngine) -> None:
    run = Run(engine)
    run.submit("profile")
    run.submit("verify_email")
    run.skip("enable_2fa")
    assert run.status("enable_2fa") is StepStatus.SKIPPED
    run.submit("enable_2fa")
    assert run.status("enable_2fa") is StepStatus.COMPLETED


ORDER = [s for s in ANSWERS if s != "done"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([*ORDER, "done", "skip:enable_2fa"]), max_size=25))
def test_random_sequences_keep_invariants(http_api: HttpApi, operations: list[str]) -> None:
    testers = ConnectionTesters(policy=TargetPolicy(allow_private=True), telegram_api=f"{http_api.base}/telegram")
    run = Run(OnboardingEngine(default_workflow(), testers))
    last = 0
    for operation in operations:
        before = run.view()
        step_id = operation.removeprefix("skip:")
        reason = None
        try:
            if operation.startswith("skip:"):
                run.skip(step_id)
            else:
                run.submit(operation)
        except StepStateError as exc:
            reason = exc.reason
        if reason is not None:
            # refused only when the view said the step was locked (or it is required and cannot be skipped)
            step = next(s for s in before.steps if s.id == step_id)
            assert step.status is StepStatus.LOCKED or reason == "not_skippable"
            continue
        view = run.view()
        assert 0 <= view.progress_percent <= 100
        # only forward moves here (no answer changes), so progress never goes back
        assert view.progress_percent >= last
        last = view.progress_percent
        assert view.completed == (view.progress_percent == 100)
        if view.completed:
            assert all(s.status is StepStatus.COMPLETED for s in view.steps if s.required)
