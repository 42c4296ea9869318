"""Server-side compliance for synced orders: the account's mode as it is when the batch is applied.

The device checked its intents against a cached profile (advisory); here the trading account's current mode and
live state decide, so a profile tightened while the device was offline still refuses what it no longer allows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.compliance.engine import decode_state, ensure_day_start, state_for_check
from service.compliance.services import ComplianceService
from service.problems import ProblemError
from service.security.tokens import CurrentUser
from signalos_core.offline import EngineAdvisor

__all__ = ["account_advisor"]


async def account_advisor(
    db: AsyncSession, request: Request[Any, Any, Any], user: CurrentUser, account_id: UUID
) -> EngineAdvisor:
    """An advisor checking opens against ``account_id``'s current mode (404 if not visible, 409 without a mode)."""
    state = request.app.state
    accounts = ComplianceService(db, state.compliance_audit, state.compliance_engines)
    account = await accounts.get_account(user, account_id)
    mode = await accounts.current_mode(account)
    if mode is None:
        raise ProblemError(
            "no_mode", detail="this trading account has no compliance mode to check synced orders against"
        )
    engine = accounts.engine_for(mode)
    now = datetime.now(UTC)
    snapshot = state_for_check(ensure_day_start(engine, decode_state(account.state), now), now)
    return EngineAdvisor(engine, lambda: snapshot)
