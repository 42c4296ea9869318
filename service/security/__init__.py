"""Authentication (JWT access tokens bound to server-side sessions), guards and password hashing."""

from service.security.guards import (
    GUARD_NAMES,
    authenticated,
    firm_admin_or_platform_admin,
    platform_admin_only,
    requires_role,
)
from service.security.tokens import AccessClaims, CurrentUser, build_jwt_auth

__all__ = [
    "GUARD_NAMES",
    "AccessClaims",
    "CurrentUser",
    "authenticated",
    "build_jwt_auth",
    "firm_admin_or_platform_admin",
    "platform_admin_only",
    "requires_role",
]
