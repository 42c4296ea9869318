"""The onboarding state machine: step statuses, what blocks each step, progress, submit, skip, change.

The persisted state of one user is a mapping ``step id -> StepRecord`` (completed, skipped or needs_review, with
the redacted answers and the first completion time). Everything else is derived here, from the workflow, the
records and the user's real :class:`Facts` (email verified? 2FA enabled? does the firm require 2FA?), so the
service stores little and a restart never loses or corrupts a user's place.

Rules:
- A step is ``locked`` while a dependency is neither completed nor skipped (``blocked_by`` lists them); the
  final step waits for every required step, and for optional steps that are back in ``needs_review``.
- Submitting a step that was already answered changes the answer ("go back and change"); when the stored
  answers really change, completed steps that list it in ``invalidated_by`` (or constrain against it) go back to
  ``needs_review``, keeping their answers as suggestions.
- Only optional steps can be skipped; ``enable_2fa`` is required when the user's firm requires 2FA.
- Steps with a ``check`` read the real fact when the server knows it (``verified_by: server_state``); when it
  does not, the submitted code is accepted as proof and the record says so (``verified_by: submitted_proof``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from signalos_core._errors import StepStateError, StepValidationError
from signalos_core.onboarding._forms import redact, suggest_defaults, validate_answers
from signalos_core.onboarding._registry import ConnectionTesters, ProviderLookup, paper_test_trade
from signalos_core.onboarding._workflow import StepDefinition, Workflow
from signalos_core.plugins import ConnectionDiagnosis

__all__ = ["Facts", "OnboardingEngine", "OnboardingView", "StepRecord", "StepStatus", "StepView", "SubmitResult"]

RecordStatus = Literal["completed", "skipped", "needs_review"]


class StepStatus(enum.StrEnum):
    """Where a step stands for one user."""

    LOCKED = "locked"
    AVAILABLE = "available"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    NEEDS_REVIEW = "needs_review"


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What the server really knows about the user (None: the server has no way to know)."""

    email_verified: bool | None = None
    two_factor_enabled: bool | None = None
    firm_requires_2fa: bool = False

    def fact(self, check: str) -> bool | None:
        """The fact a step's ``check`` reads."""
        return self.email_verified if check == "email_verified" else self.two_factor_enabled


class StepRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The persisted state of one step for one user (answers without secrets)."""

    status: RecordStatus
    answers: dict[str, Any]
    completed_at: datetime
    updated_at: datetime
    verified_by: str | None = None
    result: dict[str, Any] | None = None


class StepView(msgspec.Struct, frozen=True, kw_only=True):
    """One step as the client shows it."""

    id: str
    title: str
    description: str
    status: StepStatus
    required: bool
    blocked_by: list[str]
    depends_on: list[str]
    origin: str
    check: str | None
    action: str | None
    answers: dict[str, Any]
    suggested: dict[str, Any]
    verified_by: str | None
    result: dict[str, Any] | None
    available_at: datetime | None
    completed_at: datetime | None
    time_spent_s: float | None
    note: str | None


class OnboardingView(msgspec.Struct, frozen=True, kw_only=True):
    """The whole state: steps in order, progress (0-100, 100 only when the final step is done), resume point."""

    workflow_id: str
    workflow_version: int
    steps: list[StepView]
    progress_percent: int
    completed: bool
    current_step: str | None
    required_remaining: list[str]


class SubmitResult(msgspec.Struct, frozen=True, kw_only=True):
    """The new record of the submitted step and the steps sent back to ``needs_review``."""

    record: StepRecord
    invalidated: tuple[str, ...] = ()
    diagnosis: ConnectionDiagnosis | None = None


_DONE = ("completed", "skipped")
_PROOF_NOTE = "The server cannot check this itself here; the submitted code was accepted as proof."


class OnboardingEngine:
    """Evaluates and advances one workflow; stateless between calls (records in, records out)."""

    def __init__(self, workflow: Workflow, testers: ConnectionTesters | None = None) -> None:
        self.workflow = workflow
        self.testers = testers or ConnectionTesters()

    # ------------------------------------------------------------------ evaluation
    def _effective(self, records: Mapping[str, StepRecord], facts: Facts) -> dict[str, str]:
        """Record status per step, with live facts applied (a known fact overrides the record).

        A fact completes its step only once the step's own dependencies are done (steps are in topological
        order, so one pass suffices): a verified email does not jump the profile step.
        """
        statuses: dict[str, str] = {step_id: record.status for step_id, record in records.items()}
        for step in self.workflow.steps:
            if step.check is None:
                continue
            fact = facts.fact(step.check)
            if fact is True and all(statuses.get(dep) in _DONE for dep in step.depends_on):
                statuses[step.id] = "completed"
            elif fact is False and statuses.get(step.id) == "completed":
                statuses.pop(step.id)  # e.g. 2FA was turned off again: the step is open again
        return statuses

    def blocked_by(self, step: StepDefinition, statuses: Mapping[str, str], facts: Facts) -> list[str]:
        """Unfinished steps that keep ``step`` locked."""
        if step.final:
            return [
                other.id
                for other in self.workflow.steps
                if not other.final
                and (
                    (
                        other.is_required(firm_requires_2fa=facts.firm_requires_2fa)
                        and statuses.get(other.id) != "completed"
                    )
                    or statuses.get(other.id) == "needs_review"
                )
            ]
        return [dep for dep in step.depends_on if statuses.get(dep) not in _DONE]

    def auto_completions(self, records: Mapping[str, StepRecord], facts: Facts, now: datetime) -> dict[str, StepRecord]:
        """Records to persist for fact-backed steps the server already knows are done (first seen now)."""
        statuses = self._effective(records, facts)
        found: dict[str, StepRecord] = {}
        for step in self.workflow.steps:
            existing = records.get(step.id)
            if (
                step.check is not None
                and facts.fact(step.check) is True
                and (existing is None or existing.status != "completed" or existing.verified_by != "server_state")
                and not self.blocked_by(step, statuses, facts)
            ):
                found[step.id] = StepRecord(
                    status="completed",
                    answers={},
                    completed_at=existing.completed_at if existing and existing.status == "completed" else now,
                    updated_at=now,
                    verified_by="server_state",
                )
        return found

    def view(
        self,
        records: Mapping[str, StepRecord],
        facts: Facts,
        *,
        started_at: datetime,
        extra_suggestions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> OnboardingView:
        """The user's state: each step's status, blockers, suggestions, timings and the overall progress.

        ``extra_suggestions`` (step id -> field -> value) override the workflow's own suggestions, e.g. limits
        the service derives from the chosen compliance profile and account size.
        """
        statuses = self._effective(records, facts)
        earlier = {step_id: record.answers for step_id, record in records.items()}
        steps: list[StepView] = []
        for step in self.workflow.steps:
            blocked = self.blocked_by(step, statuses, facts)
            record = records.get(step.id)
            raw = statuses.get(step.id)
            status = StepStatus(raw) if raw else (StepStatus.LOCKED if blocked else StepStatus.AVAILABLE)
            if status is StepStatus.NEEDS_REVIEW and blocked:
                status = StepStatus.LOCKED
            available_at = self._available_at(step, records, started_at)
            completed_at = (
                record.completed_at if record and status in (StepStatus.COMPLETED, StepStatus.SKIPPED) else None
            )
            spent = None
            if completed_at is not None and available_at is not None:
                spent = max((completed_at - available_at).total_seconds(), 0.0)
            # Constants < the answers under review < values derived from (changed) earlier answers.
            defaults = suggest_defaults(step, earlier)
            derived = {s.field for s in step.suggest if s.source is not None}
            suggested = {k: v for k, v in defaults.items() if k not in derived}
            if record and record.status == "needs_review":
                suggested.update({k: v for k, v in record.answers.items() if k not in step.secret_fields()})
            suggested.update({k: v for k, v in defaults.items() if k in derived})
            suggested.update((extra_suggestions or {}).get(step.id, {}))
            steps.append(
                StepView(
                    id=step.id,
                    title=step.title,
                    description=step.description,
                    status=status,
                    required=step.is_required(firm_requires_2fa=facts.firm_requires_2fa),
                    blocked_by=blocked if status is StepStatus.LOCKED else [],
                    depends_on=list(step.depends_on),
                    origin=step.origin,
                    check=step.check,
                    action=step.action,
                    answers=dict(record.answers) if record else {},
                    suggested=suggested,
                    verified_by=(
                        "server_state"
                        if step.check and facts.fact(step.check) is True
                        else record.verified_by
                        if record
                        else None
                    ),
                    result=record.result if record else None,
                    available_at=available_at if status is not StepStatus.LOCKED else None,
                    completed_at=completed_at,
                    time_spent_s=spent,
                    note=_PROOF_NOTE if record and record.verified_by == "submitted_proof" else None,
                )
            )
        final_done = any(s.status is StepStatus.COMPLETED for s in steps if self._is_final(s.id))
        body = [s for s in steps if not self._is_final(s.id)]
        done = sum(1 for s in body if s.status in (StepStatus.COMPLETED, StepStatus.SKIPPED))
        progress = 100 if final_done else (100 * done) // (len(body) + 1)
        # Resume point: the first step to review or required step to do; optional ones only after those.
        open_steps = [s for s in steps if s.status in (StepStatus.AVAILABLE, StepStatus.NEEDS_REVIEW)]
        current = next(
            (s.id for s in open_steps if s.required or s.status is StepStatus.NEEDS_REVIEW),
            open_steps[0].id if open_steps else None,
        )
        return OnboardingView(
            workflow_id=self.workflow.id,
            workflow_version=self.workflow.version,
            steps=steps,
            progress_percent=progress,
            completed=final_done,
            current_step=current,
            required_remaining=[s.id for s in steps if s.required and s.status is not StepStatus.COMPLETED],
        )

    def _is_final(self, step_id: str) -> bool:
        step = self.workflow.step(step_id)
        return bool(step and step.final)

    def _available_at(
        self, step: StepDefinition, records: Mapping[str, StepRecord], started_at: datetime
    ) -> datetime | None:
        deps = [other.id for other in self.workflow.steps if not other.final] if step.final else list(step.depends_on)
        times = [records[dep].completed_at for dep in deps if dep in records]
        return max([started_at, *times])

    # ------------------------------------------------------------------ transitions
    def _step(self, step_id: str) -> StepDefinition:
        step = self.workflow.step(step_id)
        if step is None:
            raise StepStateError(f"no step {step_id!r} in this workflow", step_id=step_id, reason="unknown_step")
        return step

    def _check_unblocked(self, step: StepDefinition, records: Mapping[str, StepRecord], facts: Facts) -> None:
        blocked = self.blocked_by(step, self._effective(records, facts), facts)
        if blocked:
            raise StepStateError(
                f"step {step.id!r} is waiting for {', '.join(blocked)}",
                step_id=step.id,
                reason="blocked",
                blocked_by=blocked,
            )

    async def submit(
        self,
        records: Mapping[str, StepRecord],
        facts: Facts,
        step_id: str,
        answers: Mapping[str, Any],
        *,
        now: datetime,
        providers: ProviderLookup | None = None,
        paper_account: str = "onboarding",
    ) -> SubmitResult:
        """Validate and apply ``answers`` to ``step_id`` (first answer or a change).

        Raises ``StepStateError`` (unknown, blocked, fact missing, connection failed) or ``StepValidationError``.
        """
        step = self._step(step_id)
        self._check_unblocked(step, records, facts)
        earlier = {key: record.answers for key, record in records.items() if key != step_id}
        validate_answers(step, answers, earlier)
        verified_by: str | None = None
        result: dict[str, Any] | None = None
        found: ConnectionDiagnosis | None = None
        if step.check is not None:
            verified_by = self._verify_fact(step, facts, answers)
        if step.action == "connection_test":
            found = await self.testers.test(answers, providers=providers)
            result = msgspec.to_builtins(found)
            if not found.ok:
                raise StepStateError(
                    f"connection test failed: {found.status}",
                    step_id=step.id,
                    reason="connection_failed",
                    diagnosis=found,
                )
            verified_by = "connection_test"
        elif step.action == "paper_trade":
            result = msgspec.to_builtins(paper_test_trade(answers, account=paper_account))
            verified_by = "paper_trade"
        stored = redact(step, answers)
        previous = records.get(step_id)
        record = StepRecord(
            status="completed",
            answers=stored,
            completed_at=previous.completed_at if previous and previous.status == "completed" else now,
            updated_at=now,
            verified_by=verified_by,
            result=result,
        )
        invalidated: tuple[str, ...] = ()
        if previous is not None and previous.status != "skipped" and previous.answers != stored:
            invalidated = tuple(
                other.id
                for other in self.workflow.steps
                if records.get(other.id) is not None
                and records[other.id].status == "completed"
                and (step_id in other.invalidated_by or _constrains(other, step_id))
            )
        return SubmitResult(record=record, invalidated=invalidated, diagnosis=found)

    def _verify_fact(self, step: StepDefinition, facts: Facts, answers: Mapping[str, Any]) -> str:
        fact = facts.fact(step.check or "")
        if fact is True:
            return "server_state"
        if fact is False:
            what = (
                "your email address is not verified yet" if step.check == "email_verified" else "2FA is not enabled yet"
            )
            raise StepStateError(f"{what}: finish it first, then submit again", step_id=step.id, reason="fact_missing")
        if not answers.get("code"):
            raise StepValidationError(
                f"step {step.id}: a code is needed as proof",
                step_id=step.id,
                errors=[
                    {
                        "field": "code",
                        "message": "is required: the server cannot check this itself, so the code is the proof",
                    }
                ],
            )
        return "submitted_proof"

    def skip(self, records: Mapping[str, StepRecord], facts: Facts, step_id: str, *, now: datetime) -> StepRecord:
        """Skip an optional step (``not_skippable`` for required ones; ``blocked`` while dependencies are open)."""
        step = self._step(step_id)
        if step.is_required(firm_requires_2fa=facts.firm_requires_2fa):
            why = " (your firm requires it)" if step.required_when == "firm_requires_2fa" else ""
            raise StepStateError(f"step {step_id!r} is required{why}", step_id=step_id, reason="not_skippable")
        self._check_unblocked(step, records, facts)
        return StepRecord(status="skipped", answers={}, completed_at=now, updated_at=now)

    def mark_for_review(self, record: StepRecord, *, now: datetime) -> StepRecord:
        """``record`` sent back to ``needs_review`` (its answers stay, as suggestions)."""
        return msgspec.structs.replace(record, status="needs_review", updated_at=now)

    async def test_connection(
        self, step_id: str, answers: Mapping[str, Any], *, providers: ProviderLookup | None = None
    ) -> ConnectionDiagnosis:
        """On-demand test of a connection step's answers (validated against the step's form first)."""
        step = self._step(step_id)
        if step.action != "connection_test":
            raise StepStateError(f"step {step_id!r} has no connection to test", step_id=step_id, reason="no_connection")
        validate_answers(step, answers, {})
        return await self.testers.test(answers, providers=providers)


def _constrains(step: StepDefinition, step_id: str) -> bool:
    return any(
        ref is not None and ref.startswith(f"{step_id}.")
        for constraint in step.constraints
        for ref in (constraint.max, constraint.min)
    )
