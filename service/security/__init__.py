"""Authentication (JWT access tokens bound to server-side sessions), guards and password hashing."""

from service.security.guards import (
    GUARD_NAMES,
    TRADING_GUARDS,
    authenticated,
    firm_admin_or_platform_admin,
    platform_admin_only,
    requires_role,
    second_factor_when_required,
)
from service.security.tokens import AccessClaims, CurrentUser, build_jwt_auth

__all__ = [
    "GUARD_NAMES",
    "TRADING_GUARDS",
    "AccessClaims",
    "CurrentUser",
    "authenticated",
    "build_jwt_auth",
    "firm_admin_or_platform_admin",
    "platform_admin_only",
    "requires_role",
    "second_factor_when_required",
]
