"""Progress tracking and firm-managed steps: per-user progress, funnels per firm and platform-wide.

A funnel covers the cohort of users who *started* onboarding in ``[since, until)``; for each step it counts who
reached it (it was not locked for them), completed or skipped it, and who dropped off there (it is their
current, unfinished step). ``median_time_spent_s`` is the median wall time from the step becoming available
to its completion. The cohort is evaluated in Python with the same state machine the API uses, so the funnel
can never disagree with what users see; rows are read in chunks.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete, func, select

from service.accounts.models import Firm, User
from service.onboarding.models import FirmOnboardingStep, OnboardingProgress, OnboardingStepState
from service.onboarding.schemas import (
    FirmStepIn,
    FirmStepOut,
    FunnelOut,
    FunnelStepOut,
    ProgressOut,
    StepProgressOut,
)
from service.onboarding.services import OnboardingService, problem_for, record_from_row
from service.problems import ProblemError
from signalos_core.onboarding import (
    Facts,
    FirmStep,
    OnboardingEngine,
    StepStatus,
    Workflow,
    WorkflowError,
    default_workflow,
    validate_firm_step,
)

__all__ = ["OnboardingReports"]

_CHUNK = 500


class OnboardingReports(OnboardingService):
    """Progress, funnels and firm steps (same database session and runtime as the service)."""

    # ------------------------------------------------------------------ per user
    async def user_firm(self, user_id: UUID) -> UUID | None:
        """The firm of ``user_id`` (404 if the user does not exist)."""
        user = await self.db.get(User, user_id)
        if user is None:
            raise ProblemError("not_found", detail="No such user")
        return user.firm_id

    async def progress(self, user_id: UUID, firm_id: UUID | None) -> ProgressOut:
        """Completion, time per step and last activity of one user (404 if they never opened onboarding)."""
        progress = await self.db.scalar(select(OnboardingProgress).where(OnboardingProgress.user_id == user_id))
        if progress is None:
            raise ProblemError("not_found", detail="This user has not started onboarding")
        engine = await self.engine_for(firm_id)
        facts = await self.facts(user_id, firm_id)
        records = {key: record_from_row(row) for key, row in (await self.records(user_id)).items()}
        view = engine.view(records, facts, started_at=progress.started_at)
        total = (progress.completed_at - progress.started_at).total_seconds() if progress.completed_at else None
        return ProgressOut(
            user_id=user_id,
            progress_percent=view.progress_percent,
            completed=view.completed,
            current_step=view.current_step,
            started_at=progress.started_at,
            last_activity_at=progress.last_activity_at,
            completed_at=progress.completed_at,
            total_time_s=total,
            steps=[
                StepProgressOut(
                    id=step.id,
                    status=step.status.value,
                    available_at=step.available_at,
                    completed_at=step.completed_at,
                    time_spent_s=step.time_spent_s,
                )
                for step in view.steps
            ],
        )

    # ------------------------------------------------------------------ funnels
    async def funnel(self, firm_id: UUID | None, since: datetime, until: datetime) -> FunnelOut:
        """Funnel of a firm's users (``firm_id``) or of everyone (None) who started in ``[since, until)``."""
        if since.tzinfo is None or until.tzinfo is None:
            raise ProblemError(
                "validation_error",
                extra={
                    "errors": [{"field": "since" if since.tzinfo is None else "until", "message": "needs a time zone"}]
                },
            )
        if since >= until:
            raise ProblemError(
                "unprocessable",
                detail="since must be before until",
                extra={"errors": [{"field": "since", "message": "must be before until"}]},
            )
        query = (
            select(OnboardingProgress, User.firm_id)
            .join(User, User.id == OnboardingProgress.user_id)
            .where(OnboardingProgress.started_at >= since, OnboardingProgress.started_at < until)
        )
        if firm_id is not None:
            query = query.where(User.firm_id == firm_id)
        cohort = list((await self.db.execute(query)).tuples())
        records: dict[UUID, dict[str, Any]] = defaultdict(dict)
        ids = [progress.user_id for progress, _ in cohort]
        for start in range(0, len(ids), _CHUNK):
            rows = await self.db.scalars(
                select(OnboardingStepState).where(OnboardingStepState.user_id.in_(ids[start : start + _CHUNK]))
            )
            for row in rows:
                records[row.user_id][row.step_id] = record_from_row(row)
        engines: dict[UUID | None, OnboardingEngine] = {}
        requires = dict((await self.db.execute(select(Firm.id, Firm.require_2fa))).tuples().all())
        order: list[str] = [step.id for step in default_workflow().steps if not step.final]
        titles = {step.id: step.title for step in default_workflow().steps}
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        times: dict[str, list[float]] = defaultdict(list)
        completed_users = 0
        for progress, user_firm in cohort:
            if user_firm not in engines:
                engines[user_firm] = await self.engine_for(user_firm)
                for definition in engines[user_firm].workflow.steps:
                    titles.setdefault(definition.id, definition.title)
                    if not definition.final and definition.id not in order:
                        order.append(definition.id)
            facts = Facts(firm_requires_2fa=bool(requires.get(user_firm, False)) if user_firm else False)
            view = engines[user_firm].view(records[progress.user_id], facts, started_at=progress.started_at)
            completed_users += view.completed
            for step in view.steps:
                tally = counts[step.id]
                tally["reached"] += step.status is not StepStatus.LOCKED
                tally["completed"] += step.status is StepStatus.COMPLETED
                tally["skipped"] += step.status is StepStatus.SKIPPED
                tally["dropped_off"] += (not view.completed) and step.id == view.current_step
                if step.time_spent_s is not None and step.status is StepStatus.COMPLETED:
                    times[step.id].append(step.time_spent_s)
        final_id = next(step.id for step in default_workflow().steps if step.final)
        return FunnelOut(
            scope=str(firm_id) if firm_id else "platform",
            since=since,
            until=until,
            users=len(cohort),
            completed_users=completed_users,
            steps=[
                FunnelStepOut(
                    step_id=step_id,
                    title=titles[step_id],
                    reached=counts[step_id]["reached"],
                    completed=counts[step_id]["completed"],
                    skipped=counts[step_id]["skipped"],
                    dropped_off=counts[step_id]["dropped_off"],
                    median_time_spent_s=statistics.median(times[step_id]) if times[step_id] else None,
                )
                for step_id in [*order, final_id]
            ],
        )

    # ------------------------------------------------------------------ firm steps
    async def list_firm_steps(self, firm_id: UUID) -> list[FirmStepOut]:
        """The firm's added steps, in order."""
        await self._require_firm(firm_id)
        return [_firm_step_out(row) for row in await self.firm_steps(firm_id)]

    async def add_firm_step(self, firm_id: UUID, data: FirmStepIn, created_by: UUID) -> FirmStepOut:
        """Add a required step for the firm's traders (422 naming every problem if invalid)."""
        await self._require_firm(firm_id)
        existing_rows = await self.firm_steps(firm_id)
        existing = [msgspec.convert(row.definition, FirmStep) for row in existing_rows]
        step = FirmStep(
            id=data.id,
            title=data.title,
            form=data.form,
            description=data.description,
            depends_on=tuple(data.depends_on),
        )
        try:
            validate_firm_step(default_workflow(), existing, step)
        except WorkflowError as exc:
            raise problem_for(exc) from None
        position = int(await self.db.scalar(select(func.count()).where(FirmOnboardingStep.firm_id == firm_id)) or 0)
        row = FirmOnboardingStep(
            id=uuid.uuid4(),
            firm_id=firm_id,
            step_id=step.id,
            position=position,
            definition=msgspec.to_builtins(step),
            created_by=created_by,
            created_at=datetime.now(UTC),
        )
        self.db.add(row)
        await self._flush()
        return _firm_step_out(row)

    async def delete_firm_step(self, firm_id: UUID, step_id: str) -> None:
        """Remove a firm step (409 if another firm step depends on it; users' answers stay in the database)."""
        await self._require_firm(firm_id)
        rows = await self.firm_steps(firm_id)
        if not any(row.step_id == step_id for row in rows):
            raise ProblemError("not_found", detail=f"The firm has no step {step_id!r}")
        dependants = [row.step_id for row in rows if step_id in row.definition.get("depends_on", [])]
        if dependants:
            raise ProblemError("conflict", detail=f"Steps {', '.join(dependants)} depend on {step_id!r}")
        await self.db.execute(
            delete(FirmOnboardingStep).where(
                FirmOnboardingStep.firm_id == firm_id, FirmOnboardingStep.step_id == step_id
            )
        )

    async def _require_firm(self, firm_id: UUID) -> None:
        if await self.db.get(Firm, firm_id) is None:
            raise ProblemError("not_found", detail="No such firm")

    async def effective_workflow(self, firm_id: UUID | None) -> Workflow:
        """The workflow a member of ``firm_id`` follows."""
        return await self.workflow_for(firm_id)


def _firm_step_out(row: FirmOnboardingStep) -> FirmStepOut:
    definition = row.definition
    return FirmStepOut(
        id=row.step_id,
        title=str(definition.get("title", "")),
        description=str(definition.get("description", "")),
        depends_on=list(definition.get("depends_on", [])),
        form=dict(definition.get("form", {})),
        position=row.position,
        created_at=row.created_at,
    )
