"""Request and response bodies of the accounts area (msgspec, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

__all__ = [
    "AuthEventOut",
    "ChangePasswordIn",
    "FirmIn",
    "FirmOut",
    "LoginIn",
    "RefreshIn",
    "RegisterIn",
    "RevokedCount",
    "RoleIn",
    "SessionOut",
    "TokenPair",
    "UserOut",
]

Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3, max_length=320, examples=["alice@example.com"], extra_json_schema={"extra": {"format": "email"}}
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, description="12-256 characters")]
DeviceName = Annotated[str, msgspec.Meta(max_length=200, examples=["Alice's laptop"])]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of request bodies: unknown fields are errors, not silently ignored."""


class RegisterIn(_In):
    """Create a trader account."""

    email: Email
    password: Password
    display_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class LoginIn(_In):
    """Password login."""

    email: Email
    password: Password
    device: DeviceName | None = None


class RefreshIn(_In):
    """Exchange a refresh token for a new pair (the presented token is rotated)."""

    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class ChangePasswordIn(_In):
    """Change the password; every other session is revoked.

    With 2FA enabled, give a current authenticator ``code`` or a ``backup_code`` here, or step up first
    (``POST /api/2fa/step-up``, valid for a few minutes).
    """

    current_password: Password
    new_password: Password
    code: Annotated[str, msgspec.Meta(max_length=16, examples=["123456"])] | None = None
    backup_code: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class RoleIn(_In):
    """Set a user's role (platform admins only); ``firm_id`` is required for ``firm_admin``."""

    role: Literal["trader", "firm_admin", "platform_admin"]
    firm_id: UUID | None = None


class FirmIn(_In):
    """Create a firm."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    require_2fa: bool = False


class TokenPair(msgspec.Struct, kw_only=True):
    """Tokens of a session: send ``access_token`` as ``Authorization: Bearer``; keep ``refresh_token`` secret."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    session_id: UUID


class UserOut(msgspec.Struct, kw_only=True):
    """A user as the API shows it (never the password hash).

    ``email_verified``: the owner proved they receive mail at ``email`` (POST /api/me/email/verification, then
    POST /api/me/email/verify); false again after the address changes, until the change itself is confirmed.
    """

    id: UUID
    email: str
    role: str
    firm_id: UUID | None
    display_name: str | None
    created_at: datetime
    email_verified: bool


class SessionOut(msgspec.Struct, kw_only=True):
    """One of the caller's sessions."""

    id: UUID
    device: str | None
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool
    aal: int


class RevokedCount(msgspec.Struct, kw_only=True):
    """How many sessions were revoked."""

    revoked: int


class FirmOut(msgspec.Struct, kw_only=True):
    """A firm."""

    id: UUID
    name: str
    require_2fa: bool


class AuthEventOut(msgspec.Struct, kw_only=True):
    """One security event of the caller (no secrets)."""

    id: UUID
    event: str
    created_at: datetime
    session_id: UUID | None
    ip: str | None
    user_agent: str | None
    detail: dict[str, object]
