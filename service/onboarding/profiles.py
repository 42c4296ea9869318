"""Compliance profiles in onboarding: which profile ids a user may choose, and the limits they imply.

A prop-firm profile chosen in the ``compliance`` step must exist: a built-in profile (``signalos_core.compliance``)
or one of the compliance area's stored profiles visible to the user (their firm's, or their own personal ones).
For built-in profiles the account size turns the profile's percentage rules into amounts, which become the
suggested ``daily_loss_limit`` of the risk settings (e.g. FTMO: 5 % of 100 000 = 5 000.00).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import metadata
from signalos_core.compliance import list_builtin_profiles, load_builtin_profile

__all__ = ["builtin_profile_ids", "known_profile", "profile_limits", "risk_suggestions"]

_CENT = Decimal("0.01")


@cache
def builtin_profile_ids() -> frozenset[str]:
    """Ids of the profiles shipped with SignalOS."""
    return frozenset(info.id for info in list_builtin_profiles())


async def known_profile(db: AsyncSession, profile_id: str, user_id: UUID, firm_id: UUID | None) -> bool:
    """Whether ``profile_id`` is a built-in profile or a stored profile visible to the user."""
    if profile_id in builtin_profile_ids():
        return True
    table = metadata.tables.get("compliance_profile")
    if table is None or not {"profile_id", "scope", "firm_id", "owner_id"} <= set(table.c.keys()):
        return False
    visible = and_(table.c.scope == "personal", table.c.owner_id == user_id)
    if firm_id is not None:
        visible = or_(visible, and_(table.c.scope == "firm", table.c.firm_id == firm_id))
    found = await db.execute(select(table.c.profile_id).where(table.c.profile_id == profile_id, visible).limit(1))
    return found.first() is not None


@cache
def _percentages(profile_id: str) -> dict[str, Decimal]:
    profile = load_builtin_profile(profile_id)
    found: dict[str, Decimal] = {}
    for rule in profile.rules:
        pct = rule.params.get("pct") if isinstance(rule.params, dict) else None
        if rule.kind in ("daily_loss", "max_loss", "profit_target") and isinstance(pct, int | float | str):
            found.setdefault(rule.kind, Decimal(str(pct)))
    return found


def profile_limits(profile_id: str, account_size: str) -> dict[str, str]:
    """Amounts implied by a built-in profile's percentage rules for ``account_size`` (rounded down to cents)."""
    if profile_id not in builtin_profile_ids():
        return {}
    try:
        size = Decimal(account_size)
    except InvalidOperation:
        return {}
    if not size.is_finite() or size <= 0:
        return {}
    names = {"daily_loss": "daily_loss_limit", "max_loss": "max_loss_limit", "profit_target": "profit_target"}
    return {
        names[kind]: str((size * pct / 100).quantize(_CENT, rounding=ROUND_DOWN))
        for kind, pct in _percentages(profile_id).items()
    }


def risk_suggestions(compliance_answers: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Suggestions for the risk step derived from the chosen profile and account size (empty if none apply)."""
    if not compliance_answers or compliance_answers.get("mode") != "prop_firm":
        return {}
    limits = profile_limits(
        str(compliance_answers.get("profile_id", "")), str(compliance_answers.get("account_size", ""))
    )
    if "daily_loss_limit" not in limits:
        return {}
    return {"risk_settings": {"daily_loss_limit": limits["daily_loss_limit"]}}
