"""Guards: every route handler names who may call it (a test checks that none is left unguarded).

Public handlers are the ones listed in :data:`service.security.tokens.PUBLIC_PATHS`; every other handler must
carry at least one guard from this module (``authenticated`` at minimum).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from service.accounts.models import Role
from service.problems import ProblemError, register_problem
from service.security.tokens import CurrentUser

__all__ = [
    "GUARD_NAMES",
    "TRADING_GUARDS",
    "authenticated",
    "current_user",
    "firm_admin_or_platform_admin",
    "no_trading_hold",
    "platform_admin_only",
    "requires_role",
    "second_factor_when_required",
]

register_problem(
    "mfa_required",
    403,
    "Second factor required",
    "This endpoint needs a session verified with a second factor (aal2) because you enrolled 2FA or your firm "
    "requires it; log in again and complete 2FA, or enrol first.",
)

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser:
    """The authenticated user of ``connection`` (401 if there is none)."""
    user = connection.scope.get("user")
    if not isinstance(user, CurrentUser):
        raise NotAuthorizedException("Authentication required")
    return user


def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Any logged-in user with a live session."""
    current_user(connection)


def second_factor_when_required(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Users who enrolled 2FA, or whose firm requires it, must hold an aal2 session (403 ``mfa_required``)."""
    user = current_user(connection)
    if (user.mfa_enrolled or user.firm_requires_2fa) and user.aal < 2:
        raise ProblemError("mfa_required")


def no_trading_hold(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """After an operator's 2FA reset (recovery without any second factor) trading waits for the hold (403)."""
    hold = current_user(connection).trading_hold_until
    if hold is not None and hold > datetime.now(UTC):
        raise ProblemError("trading_hold", extra={"trading_hold_until": hold.isoformat()})


def requires_role(*roles: Role) -> Guard:
    """A guard admitting only users whose role is one of ``roles``."""
    allowed = frozenset(role.value for role in roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if current_user(connection).role not in allowed:
            raise PermissionDeniedException("Your role does not allow this")

    guard.__name__ = f"requires_role_{'_or_'.join(sorted(allowed))}"
    GUARD_NAMES.add(guard.__name__)
    return guard


GUARD_NAMES: set[str] = {"authenticated", "second_factor_when_required", "no_trading_hold"}
TRADING_GUARDS: list[Guard] = [authenticated, second_factor_when_required, no_trading_hold]
"""Guards of trading, compliance, sync and marketplace endpoints."""
platform_admin_only = requires_role(Role.PLATFORM_ADMIN)
firm_admin_or_platform_admin = requires_role(Role.FIRM_ADMIN, Role.PLATFORM_ADMIN)
