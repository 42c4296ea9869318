"""Onboarding storage: per-user progress and step records, idempotent submissions, firm-added steps.

Answers are stored without secrets (``writeOnly`` form fields are replaced before anything is written).
Decimal values in answers are JSON strings, as the forms require.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from advanced_alchemy.types.datetime import DateTimeUTC
from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import UUIDBase

__all__ = ["FirmOnboardingStep", "OnboardingProgress", "OnboardingStepState", "OnboardingSubmission"]


class OnboardingProgress(UUIDBase):
    """One row per user who opened onboarding: when it started, the last activity, when it was finished."""

    __tablename__ = "onboarding_progress"
    __table_args__ = (Index("ix_onboarding_progress_started_at", "started_at"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_activity_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class OnboardingStepState(UUIDBase):
    """The record of one step for one user (the library's ``StepRecord``)."""

    __tablename__ = "onboarding_step"
    __table_args__ = (UniqueConstraint("user_id", "step_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)
    verified_by: Mapped[str | None] = mapped_column(String(32), default=None)
    completed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class OnboardingSubmission(UUIDBase):
    """A successful submission under an ``Idempotency-Key``: a retry with the same key gets the same answer."""

    __tablename__ = "onboarding_submission"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JsonB)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class FirmOnboardingStep(UUIDBase):
    """A required step a firm added for its traders (the library's ``FirmStep``), in ``position`` order."""

    __tablename__ = "firm_onboarding_step"
    __table_args__ = (UniqueConstraint("firm_id", "step_id"),)

    firm_id: Mapped[UUID] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonB)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
