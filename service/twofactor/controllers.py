"""HTTP endpoints of two-factor authentication: finishing a login, enrolment, step-up, backup codes, contacts."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.security.jwt import JWTAuth
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from service.accounts.controllers import client_info, token_pair
from service.accounts.schemas import TokenPair
from service.security.guards import authenticated, current_user
from service.security.tokens import AccessClaims, AccessToken, CurrentUser, issue_access_token
from service.settings import Settings
from service.twofactor.models import OneTimeCode
from service.twofactor.pending import mfa_flood_guard, mfa_pending_token, pending_claims
from service.twofactor.schemas import (
    BackupCodesOut,
    BackupCountOut,
    CodeIn,
    CodeSentOut,
    ContactChangedOut,
    DisableIn,
    EmailChangeIn,
    FactorIn,
    PasswordFactorIn,
    PhoneChangeIn,
    SendCodeIn,
    StepUpIn,
    StepUpOut,
    TotpEnableOut,
    TotpSetupOut,
    TwoFactorStatusOut,
    VerifyIn,
)
from service.twofactor.services import SecondFactor, TwoFactorService, provide_twofactor_service

__all__ = ["ContactController", "MfaLoginController", "TwoFactorController"]

_DEPENDENCIES = {"twofactor": Provide(provide_twofactor_service)}


def _access_token(request: Request[Any, Any, Any], user_id: Any, claims: AccessClaims) -> str:
    settings: Settings = request.app.state.settings
    auth: JWTAuth[CurrentUser, AccessToken] = request.app.state.jwt_auth
    return issue_access_token(auth, settings, user_id, claims)


def _expires_in(request: Request[Any, Any, Any]) -> int:
    return int(request.app.state.settings.access_token_ttl.total_seconds())


def _sent(request: Request[Any, Any, Any], row: OneTimeCode) -> CodeSentOut:
    settings: Settings = request.app.state.settings
    return CodeSentOut(
        channel=row.channel,
        expires_in=int(settings.otp_ttl.total_seconds()),
        resend_after=int(settings.otp_resend_cooldown.total_seconds()),
    )


def _mask_phone(phone: str | None) -> str | None:
    return None if phone is None else phone[:3] + "*" * max(0, len(phone) - 6) + phone[-3:]


class MfaLoginController(Controller):
    """Finish a password login with a second factor. Send the ``mfa_token`` as ``Authorization: Bearer``."""

    path = "/api/auth/2fa"
    tags = ["auth"]
    guards = [mfa_flood_guard, mfa_pending_token]
    dependencies = _DEPENDENCIES

    @post("/verify", status_code=HTTP_200_OK, summary="Complete login with a second factor")
    async def verify(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[VerifyIn]
    ) -> TokenPair:
        """Check a TOTP, backup, SMS (all aal2) or email code (aal1, recovery: no trading) and open the session."""
        new = await twofactor.finish_login(pending_claims(request), data.method, data.code, client_info(request))
        return token_pair(request, new)

    @post("/send-code", status_code=HTTP_202_ACCEPTED, summary="Send a login code by email or SMS")
    async def send_code(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[SendCodeIn]
    ) -> CodeSentOut:
        """Send a one-time code (single use, short-lived; a resend invalidates the previous code)."""
        row = await twofactor.send_login_code(pending_claims(request), data.channel, client_info(request))
        return _sent(request, row)


class TwoFactorController(Controller):
    """The caller's second factors: authenticator enrolment, step-up, disable and backup codes."""

    path = "/api/2fa"
    tags = ["2fa"]
    guards = [authenticated, mfa_flood_guard]
    dependencies = _DEPENDENCIES

    @get("/", summary="My two-factor status")
    async def status(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any]
    ) -> TwoFactorStatusOut:
        """Whether 2FA is on, how many backup codes remain, the masked phone; never a secret."""
        user = current_user(request)
        credential = await twofactor.totp_credential(user.id)
        state = await twofactor.state(user.id)
        return TwoFactorStatusOut(
            totp_enabled=credential is not None and credential.enabled_at is not None,
            totp_enabled_at=credential.enabled_at if credential else None,
            totp_setup_pending=credential is not None and credential.pending_secret is not None,
            backup_codes_remaining=await twofactor.backup_codes_remaining(user.id),
            phone=_mask_phone(state.phone),
            phone_verified=state.phone_verified_at is not None,
            trading_hold_until=state.trading_hold_until,
            login_methods=await twofactor.login_methods(user.id),
        )

    @post("/totp/setup", status_code=HTTP_200_OK, summary="Start authenticator enrolment")
    async def setup(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[StepUpIn]
    ) -> TotpSetupOut:
        """A new pending secret with its otpauth URI and QR code, shown once. Re-setup while enabled needs step-up."""
        secret, uri, qr = await twofactor.setup_totp(
            current_user(request), client_info(request), SecondFactor(data.code, data.backup_code)
        )
        return TotpSetupOut(secret=secret, otpauth_uri=uri, qr_svg_data_uri=qr, expires_in=15 * 60)

    @post("/totp/enable", status_code=HTTP_200_OK, summary="Confirm enrolment with a code")
    async def enable(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[CodeIn]
    ) -> TotpEnableOut:
        """Turn 2FA on with a code from the app; other sessions are revoked and this one becomes aal2."""
        user = current_user(request)
        codes, claims, rotated = await twofactor.enable_totp(user, client_info(request), data.code)
        return TotpEnableOut(
            backup_codes=codes,
            rotated=rotated,
            access_token=_access_token(request, user.id, claims),
            expires_in=_expires_in(request),
        )

    @post("/step-up", status_code=HTTP_200_OK, summary="Re-verify with a second factor")
    async def step_up(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[FactorIn]
    ) -> StepUpOut:
        """Verify an authenticator or backup code now; sensitive changes are allowed for a few minutes."""
        user = current_user(request)
        claims = await twofactor.step_up(user, client_info(request), SecondFactor(*data.factor()))
        settings: Settings = request.app.state.settings
        return StepUpOut(
            access_token=_access_token(request, user.id, claims),
            expires_in=_expires_in(request),
            step_up_expires_at=claims.auth_time.astimezone(UTC) + settings.step_up_ttl,
        )

    @post("/disable", status_code=HTTP_204_NO_CONTENT, summary="Turn two-factor authentication off")
    async def disable(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[DisableIn]
    ) -> None:
        """Needs the password AND an authenticator or backup code; every other session is revoked."""
        await twofactor.disable(
            current_user(request), client_info(request), data.password, SecondFactor(data.code, data.backup_code)
        )

    @get("/backup-codes", summary="How many backup codes remain")
    async def backup_count(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any]
    ) -> BackupCountOut:
        """Only the count: codes are shown once, when created."""
        return BackupCountOut(remaining=await twofactor.backup_codes_remaining(current_user(request).id))

    @post("/backup-codes/regenerate", status_code=HTTP_200_OK, summary="Replace my backup codes")
    async def regenerate(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[StepUpIn]
    ) -> BackupCodesOut:
        """Ten new codes (step-up); the old set stops working."""
        codes = await twofactor.regenerate_backup_codes(
            current_user(request), client_info(request), SecondFactor(data.code, data.backup_code)
        )
        return BackupCodesOut(backup_codes=codes)


class ContactController(Controller):
    """Change the email address or phone number: password + step-up, then a code sent to the new address."""

    path = "/api/me/contact"
    tags = ["me"]
    guards = [authenticated, mfa_flood_guard]
    dependencies = _DEPENDENCIES

    @post("/phone", status_code=HTTP_202_ACCEPTED, summary="Set or change my phone number")
    async def phone(
        self,
        twofactor: NamedDependency[TwoFactorService],
        request: Request[Any, Any, Any],
        data: JSONBody[PhoneChangeIn],
    ) -> CodeSentOut:
        """Texts a code to the new number; confirm with POST /api/me/contact/phone/verify."""
        row = await twofactor.start_contact_change(
            current_user(request),
            client_info(request),
            channel="sms",
            value=data.phone,
            password=data.password,
            factor=SecondFactor(data.code, data.backup_code),
        )
        return _sent(request, row)

    @post("/phone/verify", status_code=HTTP_200_OK, summary="Confirm my new phone number")
    async def phone_verify(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[CodeIn]
    ) -> ContactChangedOut:
        """The code texted to the new number."""
        user = current_user(request)
        value = await twofactor.confirm_contact_change(user, client_info(request), "sms", data.code)
        return ContactChangedOut(user_id=user.id, channel="sms", value=_mask_phone(value) or "")

    @post("/phone/remove", status_code=HTTP_204_NO_CONTENT, summary="Remove my phone number")
    async def phone_remove(
        self,
        twofactor: NamedDependency[TwoFactorService],
        request: Request[Any, Any, Any],
        data: JSONBody[PasswordFactorIn],
    ) -> None:
        """Password + step-up."""
        await twofactor.remove_phone(
            current_user(request), client_info(request), data.password, SecondFactor(data.code, data.backup_code)
        )

    @post("/email", status_code=HTTP_202_ACCEPTED, summary="Change my email address")
    async def email(
        self,
        twofactor: NamedDependency[TwoFactorService],
        request: Request[Any, Any, Any],
        data: JSONBody[EmailChangeIn],
    ) -> CodeSentOut:
        """Sends a code to the new address; confirm with POST /api/me/contact/email/verify."""
        row = await twofactor.start_contact_change(
            current_user(request),
            client_info(request),
            channel="email",
            value=data.email,
            password=data.password,
            factor=SecondFactor(data.code, data.backup_code),
        )
        return _sent(request, row)

    @post("/email/verify", status_code=HTTP_200_OK, summary="Confirm my new email address")
    async def email_verify(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[CodeIn]
    ) -> ContactChangedOut:
        """The code sent to the new address; the old address is notified and other sessions are revoked."""
        user = current_user(request)
        value = await twofactor.confirm_contact_change(user, client_info(request), "email", data.code)
        return ContactChangedOut(user_id=user.id, channel="email", value=value)
