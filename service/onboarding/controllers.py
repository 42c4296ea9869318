"""HTTP endpoints of the onboarding area: the caller's wizard, connection tests, progress, funnels, firm steps.

Guards: the caller's own onboarding needs only ``authenticated`` (not the trading guards: enabling 2FA is one
of the steps, so it cannot require 2FA first). Firm endpoints need ``firm_admin`` of that firm or a platform
admin; the platform funnel needs a platform admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import PermissionDeniedException
from litestar.openapi.spec import Operation
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import Role
from service.onboarding.reports import OnboardingReports
from service.onboarding.schemas import (
    ConnectionTestIn,
    DiagnosisOut,
    FirmStepIn,
    FirmStepOut,
    FunnelOut,
    OnboardingStateOut,
    ProgressOut,
    StepSubmissionIn,
    SubmitOut,
    WorkflowOut,
    WorkflowStepOut,
)
from service.onboarding.services import onboarding_runtime
from service.problems import ProblemError
from service.security.guards import authenticated, current_user, firm_admin_or_platform_admin, platform_admin_only
from service.security.tokens import CurrentUser
from signalos_core.onboarding import Workflow, default_workflow

__all__ = ["OnboardingAdminController", "OnboardingController", "provide_onboarding", "step_forms_openapi"]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=200,
        description="Makes a retry safe: the same key and body return the first result instead of applying twice.",
    ),
]
Since = Annotated[datetime | None, QueryParameter(description="Cohort start (inclusive, ISO 8601 with zone)")]
Until = Annotated[datetime | None, QueryParameter(description="Cohort end (exclusive, ISO 8601 with zone)")]


async def provide_onboarding(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> OnboardingReports:
    """Dependency: the onboarding service on the request's database session."""
    return OnboardingReports(db_session, onboarding_runtime(request.app))


def step_forms_openapi() -> dict[str, Any]:
    """Every default step's form as an OpenAPI request-body schema (``anyOf``, one titled entry per step)."""
    workflow = default_workflow()
    forms = [
        {**step.form, "title": f"{step.id}: {step.title}", "x-signalos-step": step.id, "description": step.description}
        for step in workflow.steps
    ]
    return {
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["answers"],
            "properties": {
                "answers": {
                    "description": "Answers to the form of the step named in the path (GET /api/onboarding/workflow "
                    "lists every form, including your firm's added steps).",
                    "anyOf": forms,
                }
            },
        },
        "examples": {
            step.id: {"summary": step.title, "value": {"answers": step.example or {}}} for step in workflow.steps
        },
    }


@dataclass
class _StepFormsOperation(Operation):
    """The submit operation, with each step's form schema and an example per step in the request body."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        body = schema.setdefault("requestBody", {"required": True})
        body["content"] = {"application/json": step_forms_openapi()}
        return schema


def _workflow_out(workflow: Workflow) -> WorkflowOut:
    return WorkflowOut(
        id=workflow.id,
        version=workflow.version,
        title=workflow.title,
        steps=[
            WorkflowStepOut(
                id=step.id,
                title=step.title,
                description=step.description,
                required=step.required or step.final,
                required_when=step.required_when,
                depends_on=list(step.depends_on),
                check=step.check,
                action=step.action,
                final=step.final,
                origin=step.origin,
                form=step.form,
                example=step.example,
            )
            for step in workflow.steps
        ],
    )


class OnboardingController(Controller):
    """The caller's onboarding wizard."""

    path = "/api/onboarding"
    tags = ["onboarding"]
    guards = [authenticated]
    dependencies = {"onboarding": Provide(provide_onboarding)}

    @get("/", summary="My onboarding state")
    async def state(
        self, onboarding: NamedDependency[OnboardingReports], request: Request[Any, Any, Any]
    ) -> OnboardingStateOut:
        """Each step's status, what blocks it, suggested defaults, progress % and the step to resume at."""
        return await onboarding.state(current_user(request))

    @get("/workflow", summary="My onboarding workflow (step forms)")
    async def workflow(
        self, onboarding: NamedDependency[OnboardingReports], request: Request[Any, Any, Any]
    ) -> WorkflowOut:
        """Every step with its form's JSON Schema and an example, including steps added by your firm."""
        return _workflow_out(await onboarding.effective_workflow(current_user(request).firm_id))

    @post(
        "/steps/{step_id:str}",
        status_code=HTTP_200_OK,
        summary="Submit or change a step",
        operation_class=_StepFormsOperation,
        description="Validates the answers against the step's form (problem+json naming each bad field), runs the "
        "step's check or connection test, and stores the answers without secrets. Submitting an answered step "
        "changes it; steps that depend on the change go back to needs_review.",
    )
    async def submit(
        self,
        onboarding: NamedDependency[OnboardingReports],
        request: Request[Any, Any, Any],
        step_id: FromPath[str],
        data: JSONBody[StepSubmissionIn],
        idempotency_key: IdempotencyKey = None,
    ) -> SubmitOut:
        """Submit the answers of ``step_id``."""
        return await onboarding.submit(current_user(request), step_id, data.answers, idempotency_key)

    @post("/steps/{step_id:str}/skip", status_code=HTTP_200_OK, summary="Skip an optional step")
    async def skip(
        self,
        onboarding: NamedDependency[OnboardingReports],
        request: Request[Any, Any, Any],
        step_id: FromPath[str],
        idempotency_key: IdempotencyKey = None,
    ) -> SubmitOut:
        """Skip ``step_id`` (409 ``onboarding_step_required`` for required steps)."""
        return await onboarding.submit(current_user(request), step_id, {}, idempotency_key, skip=True)

    @post("/connections/test", status_code=HTTP_200_OK, summary="Test a connection now")
    async def test_connection(
        self,
        onboarding: NamedDependency[OnboardingReports],
        request: Request[Any, Any, Any],
        data: JSONBody[ConnectionTestIn],
    ) -> DiagnosisOut:
        """Diagnose a signal-source or broker connection without submitting the step (nothing is stored)."""
        return await onboarding.test_connection(current_user(request), data.step_id, data.answers)

    @get("/progress", summary="My onboarding progress")
    async def my_progress(
        self, onboarding: NamedDependency[OnboardingReports], request: Request[Any, Any, Any]
    ) -> ProgressOut:
        """Completion, time spent per step and last activity."""
        user = current_user(request)
        return await onboarding.progress(user.id, user.firm_id)


def _check_firm(user: CurrentUser, firm_id: UUID) -> None:
    if user.role == Role.PLATFORM_ADMIN.value:
        return
    if user.role != Role.FIRM_ADMIN.value or user.firm_id != firm_id:
        raise PermissionDeniedException("You can only manage your own firm")


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or datetime.now(UTC)
    return since or until - timedelta(days=30), until


class OnboardingAdminController(Controller):
    """Firm-managed steps, per-user progress and funnels (firm admins for their firm, platform admins for all)."""

    path = "/api/onboarding/admin"
    tags = ["onboarding"]
    guards = [firm_admin_or_platform_admin]
    dependencies = {"onboarding": Provide(provide_onboarding)}

    @get("/firms/{firm_id:uuid}/steps", summary="List a firm's added steps")
    async def list_steps(
        self, onboarding: NamedDependency[OnboardingReports], request: Request[Any, Any, Any], firm_id: FromPath[UUID]
    ) -> list[FirmStepOut]:
        """The required steps the firm added for its traders."""
        _check_firm(current_user(request), firm_id)
        return await onboarding.list_firm_steps(firm_id)

    @post("/firms/{firm_id:uuid}/steps", summary="Add a required step for the firm's traders")
    async def add_step(
        self,
        onboarding: NamedDependency[OnboardingReports],
        request: Request[Any, Any, Any],
        firm_id: FromPath[UUID],
        data: JSONBody[FirmStepIn],
    ) -> FirmStepOut:
        """Add a step (a JSON Schema form) that every trader of the firm must complete before ``done``."""
        user = current_user(request)
        _check_firm(user, firm_id)
        return await onboarding.add_firm_step(firm_id, data, user.id)

    @delete("/firms/{firm_id:uuid}/steps/{step_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Remove a firm step")
    async def delete_step(
        self,
        onboarding: NamedDependency[OnboardingReports],
        request: Request[Any, Any, Any],
        firm_id: FromPath[UUID],
        step_id: FromPath[str],
    ) -> None:
        """Remove an added step (traders' stored answers are kept)."""
        _check_firm(current_user(request), firm_id)
        await onboarding.delete_firm_step(firm_id, step_id)

    @get("/firms/{firm_id:uuid}/funnel", summary="A firm's onboarding funnel")
    async def firm_funnel(
        self,
        onboarding: NamedDependency[OnboardingReports],
        request: Request[Any, Any, Any],
        firm_id: FromPath[UUID],
        since: Since = None,
        until: Until = None,
    ) -> FunnelOut:
        """How many of the firm's users who started in the window reached each step, and where they stopped."""
        _check_firm(current_user(request), firm_id)
        return await onboarding.funnel(firm_id, *_window(since, until))

    @get("/users/{user_id:uuid}/progress", summary="A user's onboarding progress")
    async def user_progress(
        self, onboarding: NamedDependency[OnboardingReports], request: Request[Any, Any, Any], user_id: FromPath[UUID]
    ) -> ProgressOut:
        """Completion, time per step and last activity of a user of your firm (404 for users of other firms)."""
        caller = current_user(request)
        firm_id = await onboarding.user_firm(user_id)
        if caller.role != Role.PLATFORM_ADMIN.value and (firm_id is None or firm_id != caller.firm_id):
            raise ProblemError("not_found", detail="No such user")
        return await onboarding.progress(user_id, firm_id)

    @get("/funnel", summary="Platform-wide onboarding funnel", guards=[platform_admin_only])
    async def platform_funnel(
        self, onboarding: NamedDependency[OnboardingReports], since: Since = None, until: Until = None
    ) -> FunnelOut:
        """The funnel over every user who started in the window (platform admins only)."""
        return await onboarding.funnel(None, *_window(since, until))
