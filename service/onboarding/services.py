"""Onboarding logic over the database: state, submissions (idempotent), skips, connection tests, firm steps.

The state machine is the library's :class:`~signalos_core.onboarding.OnboardingEngine`; this module loads and
stores its records, reads the user's real facts (the verified email from ``user_account.email_verified_at``,
2FA enrolment from the two-factor area's ``mfa_totp`` table when that area is installed, the firm's 2FA
requirement), and maps library errors to problem+json. Funnels and
per-user progress are in :mod:`service.onboarding.reports`.

Connection testing: the app-wide :class:`OnboardingRuntime` holds the testers. By default user-supplied hosts
may only resolve to public addresses (no probing of the service's own network); tests and single-user desktop
deployments set ``SIGNALOS_ONBOARDING_ALLOW_PRIVATE_TARGETS=1`` (a setting) or call :func:`configure_onboarding`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import msgspec
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import Firm, User
from service.db.models import metadata
from service.onboarding.models import (
    FirmOnboardingStep,
    OnboardingProgress,
    OnboardingStepState,
    OnboardingSubmission,
)
from service.onboarding.profiles import known_profile, risk_suggestions
from service.onboarding.providers import marketplace_providers
from service.onboarding.schemas import DiagnosisOut, OnboardingStateOut, StepStateOut, SubmitOut
from service.problems import ProblemError, register_problem
from service.security.tokens import CurrentUser
from signalos_core.onboarding import (
    ConnectionTesters,
    Facts,
    FirmStep,
    OnboardingEngine,
    OnboardingView,
    ProviderLookup,
    StepRecord,
    StepStateError,
    StepValidationError,
    TargetPolicy,
    Workflow,
    WorkflowError,
    default_workflow,
    extend_workflow,
)
from signalos_core.plugins import ConnectionDiagnosis

__all__ = [
    "OnboardingRuntime",
    "OnboardingService",
    "configure_onboarding",
    "diagnosis_out",
    "fingerprint",
    "onboarding_runtime",
    "problem_for",
    "record_from_row",
    "step_out",
]

_ACTIVITY_RESOLUTION = timedelta(seconds=60)

for _code, _status, _title, _description in (
    (
        "onboarding_invalid_answers",
        422,
        "Invalid answers",
        "The answers do not satisfy the step's form (its JSON Schema and constraints); `errors` names each bad "
        "field and `step_id` the step.",
    ),
    ("onboarding_unknown_step", 404, "No such onboarding step", "The step id is not part of your onboarding."),
    (
        "onboarding_step_blocked",
        409,
        "Step is waiting for others",
        "Finish the steps listed in `blocked_by` first.",
    ),
    (
        "onboarding_step_required",
        409,
        "Step cannot be skipped",
        "Only optional steps can be skipped; this one is required (by the workflow or by your firm).",
    ),
    (
        "onboarding_fact_missing",
        409,
        "Not done yet",
        "The server checked and the fact this step confirms is not true yet (e.g. 2FA is not enabled).",
    ),
    (
        "onboarding_connection_failed",
        422,
        "Connection test failed",
        "The connection was tested and failed; `diagnosis` says what failed and `diagnosis.hint` what to fix.",
    ),
    (
        "onboarding_idempotency_conflict",
        409,
        "Idempotency key reused",
        "This Idempotency-Key was already used for a different request; use a new key for a new request.",
    ),
    (
        "onboarding_invalid_step",
        422,
        "Invalid onboarding step",
        "The step definition is invalid; `issues` lists every problem.",
    ),
):
    register_problem(_code, _status, _title, _description)


@attrs.define
class OnboardingRuntime:
    """App-wide onboarding services: the connection testers and the provider-plugin lookup.

    ``per_user_tests`` bounds one user's simultaneous connection tests, so nobody can occupy every slot of the
    testers with stalling targets (the testers' own bound is process-wide).
    """

    testers: ConnectionTesters
    # Per request: finds the caller's provider plugins (the marketplace's active installs), or None.
    providers: Callable[[CurrentUser, AsyncSession], ProviderLookup | None] | None = None
    per_user_tests: int = 2
    _running: dict[UUID, int] = attrs.field(factory=dict)

    @contextlib.asynccontextmanager
    async def test_slot(self, user_id: UUID) -> AsyncIterator[None]:
        """Hold one of the user's connection-test slots (429 ``rate_limited`` when all are busy)."""
        # Requests share one event loop and nothing awaits between the check and the increment: no lock needed.
        if self._running.get(user_id, 0) >= self.per_user_tests:
            raise ProblemError(
                "rate_limited",
                detail=f"At most {self.per_user_tests} connection tests at once; wait for the running ones",
                headers={"Retry-After": "10"},
            )
        self._running[user_id] = self._running.get(user_id, 0) + 1
        try:
            yield
        finally:
            self._running[user_id] -= 1
            if not self._running[user_id]:
                del self._running[user_id]


def configure_onboarding(app: Litestar, runtime: OnboardingRuntime) -> None:
    """Install ``runtime`` on ``app`` (tests point the testers at loopback servers)."""
    app.state.onboarding = runtime


def onboarding_runtime(app: Litestar) -> OnboardingRuntime:
    """The app's runtime, created on first use from the environment."""
    runtime = getattr(app.state, "onboarding", None)
    if not isinstance(runtime, OnboardingRuntime):
        allow = bool(app.state.settings.onboarding_allow_private_targets)
        runtime = OnboardingRuntime(
            testers=ConnectionTesters(policy=TargetPolicy(allow_private=allow)),
            providers=marketplace_providers(app.state),
        )
        app.state.onboarding = runtime
    return runtime


def diagnosis_out(found: ConnectionDiagnosis) -> DiagnosisOut:
    """The API form of a diagnosis."""
    return DiagnosisOut(
        status=found.status.value,
        ok=found.ok,
        latency_ms=found.latency_ms,
        hint=found.hint,
        detail=found.detail,
    )


def problem_for(exc: StepStateError | StepValidationError | WorkflowError) -> ProblemError:
    """The problem+json error for a library error."""
    if isinstance(exc, StepValidationError):
        return ProblemError(
            "onboarding_invalid_answers", detail=str(exc), extra={"errors": exc.errors, "step_id": exc.step_id}
        )
    if isinstance(exc, WorkflowError):
        return ProblemError("onboarding_invalid_step", detail=str(exc), extra={"issues": exc.issues})
    codes = {
        "unknown_step": "onboarding_unknown_step",
        "blocked": "onboarding_step_blocked",
        "not_skippable": "onboarding_step_required",
        "fact_missing": "onboarding_fact_missing",
        "connection_failed": "onboarding_connection_failed",
    }
    extra: dict[str, Any] = {"step_id": exc.step_id, "reason": exc.reason}
    if exc.blocked_by:
        extra["blocked_by"] = exc.blocked_by
    if isinstance(exc.diagnosis, ConnectionDiagnosis):
        extra["diagnosis"] = msgspec.to_builtins(diagnosis_out(exc.diagnosis))
    return ProblemError(codes.get(exc.reason, "bad_request"), detail=str(exc), extra=extra)


def step_out(view: Any) -> StepStateOut:
    """API form of a library ``StepView``."""
    return msgspec.convert(msgspec.to_builtins(view), StepStateOut)


def record_from_row(row: OnboardingStepState) -> StepRecord:
    """The library record stored in ``row``."""
    return StepRecord(
        status=row.status,  # type: ignore[arg-type]  # only the three record statuses are ever written
        answers=dict(row.answers),
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        verified_by=row.verified_by,
        result=row.result,
    )


def fingerprint(operation: str, step_id: str, answers: Mapping[str, Any]) -> str:
    """What a request did, for idempotency: operation, step and canonical answers."""
    canonical = json.dumps({"op": operation, "step": step_id, "answers": answers}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class OnboardingService:
    """Onboarding over one database session."""

    def __init__(self, db: AsyncSession, runtime: OnboardingRuntime) -> None:
        self.db = db
        self.runtime = runtime

    # ------------------------------------------------------------------ workflow and facts
    async def firm_steps(self, firm_id: UUID | None) -> list[FirmOnboardingStep]:
        """A firm's added steps in order (none without a firm)."""
        if firm_id is None:
            return []
        rows = await self.db.scalars(
            select(FirmOnboardingStep)
            .where(FirmOnboardingStep.firm_id == firm_id)
            .order_by(FirmOnboardingStep.position, FirmOnboardingStep.created_at)
        )
        return list(rows)

    async def workflow_for(self, firm_id: UUID | None) -> Workflow:
        """The default workflow plus the firm's required steps."""
        steps = [msgspec.convert(row.definition, FirmStep) for row in await self.firm_steps(firm_id)]
        return extend_workflow(default_workflow(), steps)

    async def engine_for(self, firm_id: UUID | None) -> OnboardingEngine:
        """The state machine for a member of ``firm_id``."""
        return OnboardingEngine(await self.workflow_for(firm_id), self.runtime.testers)

    async def facts(self, user_id: UUID, firm_id: UUID | None) -> Facts:
        """The user's real facts; None where this deployment has no way to know."""
        two_factor: bool | None = None
        totp = metadata.tables.get("mfa_totp")
        if totp is not None and "enabled_at" in totp.c and "user_id" in totp.c:
            enabled = await self.db.execute(select(totp.c.enabled_at).where(totp.c.user_id == user_id))
            row = enabled.first()
            two_factor = row is not None and row[0] is not None
        # The accounts area's real verification state (POST /api/me/email/verify): never a submitted code.
        verified = await self.db.scalar(select(User.email_verified_at).where(User.id == user_id))
        email = verified is not None
        firm_requires = False
        if firm_id is not None:
            firm_requires = bool(await self.db.scalar(select(Firm.require_2fa).where(Firm.id == firm_id)))
        return Facts(email_verified=email, two_factor_enabled=two_factor, firm_requires_2fa=firm_requires)

    # ------------------------------------------------------------------ loading and saving
    async def _progress(self, user_id: UUID, now: datetime) -> OnboardingProgress:
        progress = await self.db.scalar(select(OnboardingProgress).where(OnboardingProgress.user_id == user_id))
        if progress is None:
            progress = OnboardingProgress(id=uuid.uuid4(), user_id=user_id, started_at=now, last_activity_at=now)
            self.db.add(progress)
            await self._flush()
        return progress

    async def records(self, user_id: UUID) -> dict[str, OnboardingStepState]:
        """The user's step rows by step id."""
        rows = await self.db.scalars(select(OnboardingStepState).where(OnboardingStepState.user_id == user_id))
        return {row.step_id: row for row in rows}

    async def _save(
        self, user_id: UUID, rows: dict[str, OnboardingStepState], step_id: str, record: StepRecord
    ) -> None:
        row = rows.get(step_id)
        if row is None:
            row = OnboardingStepState(id=uuid.uuid4(), user_id=user_id, step_id=step_id)
            self.db.add(row)
            rows[step_id] = row
        row.status = record.status
        row.answers = record.answers
        row.result = record.result
        row.verified_by = record.verified_by
        row.completed_at = record.completed_at
        row.updated_at = record.updated_at

    async def _flush(self) -> None:
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise ProblemError("conflict", detail="A concurrent onboarding request changed this; retry") from None

    async def _view(
        self, user: CurrentUser, now: datetime, *, touch: bool
    ) -> tuple[OnboardingEngine, Facts, OnboardingProgress, dict[str, OnboardingStepState], OnboardingView]:
        engine = await self.engine_for(user.firm_id)
        facts = await self.facts(user.id, user.firm_id)
        progress = await self._progress(user.id, now)
        rows = await self.records(user.id)
        records = {key: record_from_row(row) for key, row in rows.items()}
        for step_id, record in engine.auto_completions(records, facts, now).items():
            await self._save(user.id, rows, step_id, record)
            records[step_id] = record
        if touch and now - progress.last_activity_at >= _ACTIVITY_RESOLUTION:
            progress.last_activity_at = now
        compliance = records.get("compliance")
        view = engine.view(
            records,
            facts,
            started_at=progress.started_at,
            extra_suggestions=risk_suggestions(compliance.answers if compliance else None),
        )
        if view.completed and progress.completed_at is None:
            final = records.get(engine.workflow.steps[-1].id)
            progress.completed_at = final.completed_at if final else now
        return engine, facts, progress, rows, view

    def _state_out(self, progress: OnboardingProgress, view: OnboardingView) -> OnboardingStateOut:
        return OnboardingStateOut(
            workflow_id=view.workflow_id,
            workflow_version=view.workflow_version,
            progress_percent=view.progress_percent,
            completed=view.completed,
            current_step=view.current_step,
            required_remaining=view.required_remaining,
            started_at=progress.started_at,
            last_activity_at=progress.last_activity_at,
            completed_at=progress.completed_at,
            steps=[step_out(step) for step in view.steps],
        )

    # ------------------------------------------------------------------ the caller's onboarding
    async def state(self, user: CurrentUser) -> OnboardingStateOut:
        """The caller's state (created on first call; facts the server knows are applied)."""
        _, _, progress, _, view = await self._view(user, datetime.now(UTC), touch=True)
        await self._flush()
        return self._state_out(progress, view)

    async def _replay(self, user: CurrentUser, key: str | None, print_: str) -> SubmitOut | None:
        if key is None:
            return None
        stored = await self.db.scalar(
            select(OnboardingSubmission).where(
                OnboardingSubmission.user_id == user.id, OnboardingSubmission.idempotency_key == key
            )
        )
        if stored is None:
            return None
        if stored.fingerprint != print_:
            raise ProblemError("onboarding_idempotency_conflict", extra={"idempotency_key": key})
        replayed = msgspec.convert(stored.response, SubmitOut)
        replayed.replayed = True
        return replayed

    async def submit(
        self, user: CurrentUser, step_id: str, answers: dict[str, Any], key: str | None, *, skip: bool = False
    ) -> SubmitOut:
        """Submit (or with ``skip``, skip) a step; with an idempotency key a retry returns the first result."""
        print_ = fingerprint("skip" if skip else "submit", step_id, answers)
        replay = await self._replay(user, key, print_)
        if replay is not None:
            return replay
        now = datetime.now(UTC)
        if not skip and step_id == "compliance":
            await self._check_profile(user, answers)
        engine, facts, progress, rows, _ = await self._view(user, now, touch=False)
        records = {k: record_from_row(row) for k, row in rows.items()}
        providers = self.runtime.providers(user, self.db) if self.runtime.providers else None
        diagnosis: ConnectionDiagnosis | None = None
        invalidated: tuple[str, ...] = ()
        definition = engine.workflow.step(step_id)
        tests_connection = not skip and definition is not None and definition.action == "connection_test"
        try:
            if skip:
                record = engine.skip(records, facts, step_id, now=now)
            else:
                async with self.runtime.test_slot(user.id) if tests_connection else contextlib.nullcontext():
                    result = await engine.submit(
                        records, facts, step_id, answers, now=now, providers=providers, paper_account=str(user.id)
                    )
                record, invalidated, diagnosis = result.record, result.invalidated, result.diagnosis
        except (StepStateError, StepValidationError) as exc:
            # Nothing is stored for a refused submission (the transaction rolls back on any error response).
            raise problem_for(exc) from None
        await self._save(user.id, rows, step_id, record)
        for other in invalidated:
            await self._save(user.id, rows, other, engine.mark_for_review(record_from_row(rows[other]), now=now))
        progress.last_activity_at = now
        await self._flush()
        _, _, progress, _, view = await self._view(user, now, touch=False)
        out = SubmitOut(
            step=step_out(next(s for s in view.steps if s.id == step_id)),
            invalidated=list(invalidated),
            diagnosis=diagnosis_out(diagnosis) if diagnosis else None,
            state=self._state_out(progress, view),
        )
        if key is not None:
            self.db.add(
                OnboardingSubmission(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    idempotency_key=key,
                    fingerprint=print_,
                    status_code=200,
                    response=msgspec.to_builtins(out),
                    created_at=now,
                )
            )
        await self._flush()
        return out

    async def _check_profile(self, user: CurrentUser, answers: dict[str, Any]) -> None:
        profile_id = answers.get("profile_id")
        if answers.get("mode") != "prop_firm" or not isinstance(profile_id, str):
            return  # the form's own validation reports a missing or mistyped profile
        if not await known_profile(self.db, profile_id, user.id, user.firm_id):
            message = "unknown profile: choose a built-in one (GET /api/compliance/builtin-profiles) or your firm's"
            raise ProblemError(
                "onboarding_invalid_answers",
                detail="step compliance: invalid answers (profile_id)",
                extra={"errors": [{"field": "profile_id", "message": message}], "step_id": "compliance"},
            )

    async def test_connection(self, user: CurrentUser, step_id: str, answers: dict[str, Any]) -> DiagnosisOut:
        """Test a connection on demand (nothing is stored)."""
        engine = await self.engine_for(user.firm_id)
        providers = self.runtime.providers(user, self.db) if self.runtime.providers else None
        try:
            async with self.runtime.test_slot(user.id):
                found = await engine.test_connection(step_id, answers, providers=providers)
        except (StepStateError, StepValidationError) as exc:
            raise problem_for(exc) from None
        return diagnosis_out(found)
