"""Request and response bodies of the two-factor area (msgspec, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import msgspec

from service.accounts.schemas import Email

__all__ = [
    "BackupCodesOut",
    "BackupCountOut",
    "CodeIn",
    "CodeSentOut",
    "ContactChangedOut",
    "DisableIn",
    "EmailChangeIn",
    "FactorIn",
    "MfaChallengeOut",
    "PasswordFactorIn",
    "PhoneChangeIn",
    "SendCodeIn",
    "StepUpIn",
    "StepUpOut",
    "TotpEnableOut",
    "TotpSetupOut",
    "TwoFactorStatusOut",
    "VerifyIn",
]

# Generous bounds: the format itself is checked strictly by the service (six ASCII digits, etc.).
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["123456"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of request bodies: unknown fields are errors."""


class StepUpIn(_In):
    """A second factor in the request: an authenticator ``code`` or a ``backup_code`` (one of them)."""

    code: Code | None = None
    backup_code: Code | None = None


class FactorIn(_In):
    """Exactly one second factor: an authenticator ``code`` or a ``backup_code`` (not null, not both)."""

    # msgspec states neither "one of" nor "not both"; the service refuses both (400 naming `backup_code`) and
    # neither (400 naming `code`), and the document says so.
    __openapi_extra__: ClassVar[dict[str, Any]] = {"minProperties": 1, "maxProperties": 1}

    code: Code | msgspec.UnsetType = msgspec.UNSET
    backup_code: Code | msgspec.UnsetType = msgspec.UNSET

    def factor(self) -> tuple[str | None, str | None]:
        """``(code, backup_code)``, None where not sent."""
        code = None if isinstance(self.code, msgspec.UnsetType) else self.code
        backup = None if isinstance(self.backup_code, msgspec.UnsetType) else self.backup_code
        return code, backup


class VerifyIn(_In):
    """Finish a login: the method and its code (send the ``mfa_token`` as ``Authorization: Bearer``)."""

    method: Literal["totp", "backup", "email", "sms"]
    code: Code


class SendCodeIn(_In):
    """Ask for a login code by email or SMS."""

    channel: Literal["email", "sms"]


class CodeIn(_In):
    """A single code (enrolment confirmation, contact verification)."""

    code: Code


class DisableIn(_In):
    """Turn 2FA off: the password AND an authenticator code or a backup code."""

    password: Password
    code: Code | None = None
    backup_code: Code | None = None


class PasswordFactorIn(_In):
    """The password, plus a second factor unless a fresh step-up was done in this session."""

    password: Password
    code: Code | None = None
    backup_code: Code | None = None


class PhoneChangeIn(PasswordFactorIn, kw_only=True):
    """Set or change the phone number (E.164, e.g. ``+447911123456``); a code is texted to it."""

    phone: Annotated[str, msgspec.Meta(min_length=8, max_length=20, examples=["+447911123456"])]


class EmailChangeIn(PasswordFactorIn, kw_only=True):
    """Change the email address; a code is sent to the new address."""

    email: Email


class MfaChallengeOut(msgspec.Struct, kw_only=True):
    """A correct password of a 2FA user: finish with POST /api/auth/2fa/verify (``mfa_token`` as Bearer)."""

    mfa_required: bool = True
    mfa_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    methods: list[str]


class CodeSentOut(msgspec.Struct, kw_only=True):
    """A code is on its way."""

    channel: str
    expires_in: int
    resend_after: int


class TwoFactorStatusOut(msgspec.Struct, kw_only=True):
    """The caller's two-factor settings (never a secret)."""

    totp_enabled: bool
    totp_enabled_at: datetime | None
    totp_setup_pending: bool
    backup_codes_remaining: int
    phone: str | None
    phone_verified: bool
    trading_hold_until: datetime | None
    login_methods: list[str]


class TotpSetupOut(msgspec.Struct, kw_only=True):
    """Shown once: add it to an authenticator app (scan the QR or type the secret), then confirm with a code."""

    secret: str
    otpauth_uri: str
    qr_svg_data_uri: str
    expires_in: int


class TotpEnableOut(msgspec.Struct, kw_only=True):
    """2FA is on. ``backup_codes`` (first enrolment only) are shown this once: store them offline."""

    backup_codes: list[str] | None
    rotated: bool
    access_token: str
    expires_in: int


class StepUpOut(msgspec.Struct, kw_only=True):
    """The session is freshly verified until ``step_up_expires_at``; use the new access token."""

    access_token: str
    expires_in: int
    step_up_expires_at: datetime


class BackupCodesOut(msgspec.Struct, kw_only=True):
    """A new set of backup codes, shown this once; the old set no longer works."""

    backup_codes: list[str]


class BackupCountOut(msgspec.Struct, kw_only=True):
    """How many backup codes remain (the codes themselves are never shown again)."""

    remaining: int


class ContactChangedOut(msgspec.Struct, kw_only=True):
    """The verified new contact."""

    user_id: UUID
    channel: str
    value: str
