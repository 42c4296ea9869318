"""Request and response bodies of the onboarding area (msgspec; unknown request fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

__all__ = [
    "ConnectionTestIn",
    "DiagnosisOut",
    "FirmStepIn",
    "FirmStepOut",
    "FunnelOut",
    "FunnelStepOut",
    "OnboardingStateOut",
    "ProgressOut",
    "StepProgressOut",
    "StepStateOut",
    "StepSubmissionIn",
    "SubmitOut",
    "WorkflowOut",
    "WorkflowStepOut",
]

StepId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["broker"])]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of request bodies: unknown fields are errors, not silently ignored."""


class StepSubmissionIn(_In, frozen=True):
    """Answers to one step's form (see the step's JSON Schema in GET /api/onboarding/workflow)."""

    answers: dict[str, Any]


class ConnectionTestIn(_In, frozen=True):
    """Test a connection now, without submitting: the answers of the ``signal_source`` or ``broker`` form."""

    step_id: Literal["signal_source", "broker"]
    answers: dict[str, Any]


class FirmStepIn(_In, frozen=True):
    """A required step a firm adds for its traders: a form (JSON Schema, type object) shown before ``done``."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["firm_kyc"])]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    form: dict[str, Any]
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    depends_on: list[StepId] = []


class DiagnosisOut(msgspec.Struct, kw_only=True):
    """A connection test result (the provider plugin contract's ConnectionDiagnosis)."""

    status: Literal[
        "ok",
        "dns_failure",
        "refused",
        "timeout",
        "tls_error",
        "bad_credentials",
        "wrong_server",
        "protocol_error",
        "error",
    ]
    ok: bool
    latency_ms: float | None
    hint: str
    detail: str


class StepStateOut(msgspec.Struct, kw_only=True):
    """One step for the caller: status, what blocks it, answers (no secrets), suggested defaults, timings."""

    id: str
    title: str
    description: str
    status: Literal["locked", "available", "completed", "skipped", "needs_review"]
    required: bool
    blocked_by: list[str]
    depends_on: list[str]
    origin: Literal["workflow", "firm"]
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


class OnboardingStateOut(msgspec.Struct, kw_only=True):
    """The caller's onboarding: every step, overall progress and where to resume."""

    workflow_id: str
    workflow_version: int
    progress_percent: int
    completed: bool
    current_step: str | None
    required_remaining: list[str]
    started_at: datetime
    last_activity_at: datetime
    completed_at: datetime | None
    steps: list[StepStateOut]


class SubmitOut(msgspec.Struct, kw_only=True):
    """Result of a submission: the step, the steps sent back for review, the connection diagnosis, the state."""

    step: StepStateOut
    invalidated: list[str]
    diagnosis: DiagnosisOut | None
    state: OnboardingStateOut
    replayed: bool = False


class WorkflowStepOut(msgspec.Struct, kw_only=True):
    """A step definition with its form's JSON Schema."""

    id: str
    title: str
    description: str
    required: bool
    required_when: str | None
    depends_on: list[str]
    check: str | None
    action: str | None
    final: bool
    origin: str
    form: dict[str, Any]
    example: dict[str, Any] | None


class WorkflowOut(msgspec.Struct, kw_only=True):
    """The caller's effective workflow (the default plus their firm's steps)."""

    id: str
    version: int
    title: str
    steps: list[WorkflowStepOut]


class FirmStepOut(msgspec.Struct, kw_only=True):
    """A firm's added step."""

    id: str
    title: str
    description: str
    depends_on: list[str]
    form: dict[str, Any]
    position: int
    created_at: datetime


class StepProgressOut(msgspec.Struct, kw_only=True):
    """Per-step timing of one user."""

    id: str
    status: str
    available_at: datetime | None
    completed_at: datetime | None
    time_spent_s: float | None


class ProgressOut(msgspec.Struct, kw_only=True):
    """Per-user completion, time spent per step and last activity."""

    user_id: UUID
    progress_percent: int
    completed: bool
    current_step: str | None
    started_at: datetime
    last_activity_at: datetime
    completed_at: datetime | None
    total_time_s: float | None
    steps: list[StepProgressOut]


class FunnelStepOut(msgspec.Struct, kw_only=True):
    """How many users of the cohort reached, finished and stopped at a step."""

    step_id: str
    title: str
    reached: int
    completed: int
    skipped: int
    dropped_off: int
    median_time_spent_s: float | None


class FunnelOut(msgspec.Struct, kw_only=True):
    """Funnel of the users who started onboarding in ``[since, until)``."""

    scope: str
    since: datetime
    until: datetime
    users: int
    completed_users: int
    steps: list[FunnelStepOut]
