"""Two-factor flows: login challenge, enrolment, step-up, disable, backup codes, contacts, operator reset.

The rules (auth.md §4, docs/security.md):

* Login: a correct password for a user with an authenticator returns only an ``mfa_pending`` token; the
  second factor then opens the session. TOTP, a backup code or an SMS code give ``aal2``; an emailed code
  gives ``aal1`` (email is a recovery channel, NIST 800-63B), which never reaches trading.
* Step-up: disabling 2FA, regenerating backup codes, re-setting the authenticator and changing the password,
  email or phone need a TOTP or backup-code verification at most ``SIGNALOS_STEP_UP_TTL`` old (the session's
  ``auth_time`` with ``otp``/``backup`` in its ``amr``) or such a code in the request. Email/SMS never count.
* Disabling needs the password and a TOTP or backup code in the request; disabling, re-setting and enabling
  revoke every other session.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import attrs
from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import Session, User
from service.accounts.services import ClientInfo, NewSession, normalise_email
from service.problems import ProblemError
from service.security.tokens import AccessClaims, CurrentUser
from service.settings import Settings
from service.twofactor import backup, totp
from service.twofactor.crypto import SecretBox
from service.twofactor.models import BackupCode, MfaChallenge, MfaState, OneTimeCode, TotpCredential
from service.twofactor.pending import PendingClaims, issue_pending_token
from service.twofactor.senders import Senders, build_senders
from service.twofactor.verifier import STRONG_AMR, Verifier

__all__ = ["Challenge", "SecondFactor", "TwoFactorService", "provide_twofactor_service"]

_PENDING_SETUP_TTL: Final = timedelta(minutes=15)
_PHONE_RE: Final = r"\+[1-9][0-9]{7,14}"  # E.164
_RUNTIME_KEY: Final = "signalos_twofactor_runtime"


@attrs.frozen
class SecondFactor:
    """A second factor sent inside a request: an authenticator ``code`` or a ``backup_code`` (at most one)."""

    code: str | None = None
    backup_code: str | None = None

    @property
    def given(self) -> bool:
        """Whether the request carried a factor."""
        return self.code is not None or self.backup_code is not None


@attrs.frozen
class Challenge:
    """The answer to a correct password when a second factor is needed."""

    token: str
    expires_in: int
    methods: list[str]


class TwoFactorService(Verifier):
    """Every two-factor flow, over one database session (see the module docstring for the rules)."""

    # ------------------------------------------------------------------ status
    async def enrolled(self, user_id: UUID) -> bool:
        """Whether the user has a confirmed authenticator (2FA enabled)."""
        credential = await self.totp_credential(user_id)
        return credential is not None and credential.enabled_at is not None

    async def login_methods(self, user_id: UUID) -> list[str]:
        """The second factors this user can complete a login with."""
        methods = ["totp", "backup"]
        state = await self.state(user_id)
        if self.senders.sms is not None and state.phone and state.phone_verified_at:
            methods.append("sms")
        if self.senders.email is not None:
            methods.append("email")
        return methods

    # ------------------------------------------------------------------ login
    async def begin_login(self, user: User, client: ClientInfo, device: str | None) -> Challenge:
        """After a correct password: store a challenge and return its ``mfa_pending`` token."""
        now = datetime.now(UTC)
        # Housekeeping: this user's dead challenges and day-old codes go (they can never be used again).
        await self.db.execute(
            delete(MfaChallenge).where(MfaChallenge.user_id == user.id, MfaChallenge.expires_at < now)
        )
        await self.db.execute(
            delete(OneTimeCode).where(OneTimeCode.user_id == user.id, OneTimeCode.created_at < now - timedelta(days=1))
        )
        challenge = MfaChallenge(
            id=uuid.uuid4(),
            user_id=user.id,
            device=device,
            attempts=0,
            created_at=now,
            expires_at=now + self.settings.mfa_pending_ttl,
        )
        self.db.add(challenge)
        await self.accounts.record_event("mfa_challenge", user_id=user.id, client=client)
        return Challenge(
            token=issue_pending_token(self.settings, user.id, challenge.id, challenge.expires_at),
            expires_in=int(self.settings.mfa_pending_ttl.total_seconds()),
            methods=await self.login_methods(user.id),
        )

    async def _live_challenge(self, claims: PendingClaims, *, count_attempt: bool) -> MfaChallenge:
        now = datetime.now(UTC)
        query = update(MfaChallenge).where(
            MfaChallenge.id == claims.challenge_id,
            MfaChallenge.user_id == claims.user_id,
            MfaChallenge.consumed_at.is_(None),
            MfaChallenge.expires_at > now,
            MfaChallenge.attempts < self.settings.otp_max_attempts,
        )
        if count_attempt:
            query = query.values(attempts=MfaChallenge.attempts + 1)
        else:
            query = query.values(attempts=MfaChallenge.attempts)
        result = await self.db.execute(query.execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            await self.db.commit()
            raise ProblemError("mfa_token_invalid")
        challenge = await self.db.get(MfaChallenge, claims.challenge_id, populate_existing=True)
        assert challenge is not None  # noqa: S101 - updated just above
        return challenge

    async def send_login_code(self, claims: PendingClaims, channel: str, client: ClientInfo) -> OneTimeCode:
        """Send an emailed or texted login code for a pending login."""
        await self._live_challenge(claims, count_attempt=False)
        user = await self.accounts.get_user(claims.user_id)
        if channel == "sms":
            state = await self.state(user.id)
            if not (state.phone and state.phone_verified_at):
                raise ProblemError("channel_unavailable", detail="No verified phone number on file")
            destination = state.phone
        else:
            destination = user.email
        return await self.send_code(user, client, channel=channel, purpose="login", destination=destination)

    async def finish_login(self, claims: PendingClaims, method: str, code: str, client: ClientInfo) -> NewSession:
        """Check the second factor of a pending login and open the session (single use, few attempts)."""
        challenge = await self._live_challenge(claims, count_attempt=True)
        user = await self.accounts.get_user(claims.user_id)
        amr = await self.check(user, client, method, code, purpose="login")
        consumed = await self.db.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge.id, MfaChallenge.consumed_at.is_(None))
            .values(consumed_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        if consumed.rowcount != 1:  # type: ignore[attr-defined]
            raise ProblemError("mfa_token_invalid")
        # Email is a recovery channel, not an authenticator (NIST 800-63B): it never yields aal2.
        aal = 1 if amr == "email" else 2
        return await self.accounts.start_session(user, client, device=challenge.device, amr=("pwd", amr), aal=aal)

    # ------------------------------------------------------------------ step-up
    async def _session(self, current: CurrentUser) -> Session:
        session = await self.db.get(Session, current.session_id, populate_existing=True)
        if session is None:  # pragma: no cover - the auth middleware checked it a moment ago
            raise ProblemError("not_authenticated")
        return session

    async def _elevate(self, current: CurrentUser, amr: str) -> AccessClaims:
        """Record a fresh factor on the current session (aal2 for strong factors); new claims for a new token."""
        session = await self._session(current)
        methods = [m for m in session.amr.split(",") if m and m != amr] + [amr]
        session.amr = ",".join(methods)
        session.auth_time = datetime.now(UTC)
        if amr in STRONG_AMR:
            session.aal = 2
        user = await self.accounts.get_user(current.id)
        return AccessClaims(
            sid=session.id,
            amr=tuple(methods),
            aal=session.aal,
            auth_time=session.auth_time,
            token_version=user.token_version,
        )

    async def _check_strong(self, current: CurrentUser, client: ClientInfo, factor: SecondFactor) -> str:
        user = await self.accounts.get_user(current.id)
        if factor.code is not None and factor.backup_code is not None:
            raise ProblemError(
                "validation_error", extra={"errors": [{"field": "backup_code", "message": "send code OR backup_code"}]}
            )
        method, code = ("totp", factor.code) if factor.code is not None else ("backup", factor.backup_code or "")
        return await self.check(user, client, method, code, session_id=current.session_id)

    async def step_up(self, current: CurrentUser, client: ClientInfo, factor: SecondFactor) -> AccessClaims:
        """Verify a TOTP or backup code now and mark the session freshly authenticated (aal2)."""
        if not factor.given:
            raise ProblemError("validation_error", extra={"errors": [{"field": "code", "message": "required"}]})
        if not await self.enrolled(current.id):
            raise ProblemError("totp_not_enabled")
        amr = await self._check_strong(current, client, factor)
        claims = await self._elevate(current, amr)
        await self.accounts.record_event(
            "step_up", user_id=current.id, client=client, session_id=current.session_id, detail={"amr": amr}
        )
        return claims

    async def require_step_up(self, current: CurrentUser, client: ClientInfo, factor: SecondFactor) -> None:
        """Allow a sensitive change: no-op without 2FA; else a factor in the request or a fresh strong step-up."""
        if not await self.enrolled(current.id):
            return
        if factor.given:
            await self._elevate(current, await self._check_strong(current, client, factor))
            return
        session = await self._session(current)
        fresh = session.auth_time >= datetime.now(UTC) - self.settings.step_up_ttl
        if not (fresh and STRONG_AMR & set(session.amr.split(","))):
            raise ProblemError("step_up_required")

    async def check_password(self, current: CurrentUser, client: ClientInfo, password: str) -> User:
        """Re-check the password for a sensitive change; a wrong one counts on the shared failure counter."""
        user = await self.accounts.get_user(current.id)
        await self.state(user.id)
        if await self.is_locked(user.id) or not self.passwords.verify(user.password_hash, password):
            await self.fail(user, client, method="password", reason="wrong_password", session_id=current.session_id)
        return user

    # ------------------------------------------------------------------ enrolment
    async def setup_totp(self, current: CurrentUser, client: ClientInfo, factor: SecondFactor) -> tuple[str, str, str]:
        """Start (or, with step-up, restart) authenticator enrolment: ``(secret, otpauth URI, QR data URI)``.

        The secret is returned here once, while pending; nothing returns it after the enrolment is confirmed.
        """
        credential = await self.totp_credential(current.id)
        if credential is not None and credential.enabled_at is not None:
            await self.require_step_up(current, client, factor)
        if credential is None:
            credential = TotpCredential(id=uuid.uuid4(), user_id=current.id)
            self.db.add(credential)
        secret = totp.new_secret()
        credential.pending_secret = self.box.encrypt(current.id, secret)
        credential.pending_created_at = datetime.now(UTC)
        await self.accounts.record_event(
            "totp_setup_started", user_id=current.id, client=client, session_id=current.session_id
        )
        uri, qr = totp.provisioning(secret, current.email, self.settings.totp_issuer)
        return secret, uri, qr

    async def enable_totp(
        self, current: CurrentUser, client: ClientInfo, code: str
    ) -> tuple[list[str] | None, AccessClaims, bool]:
        """Confirm the pending secret with a code: ``(backup codes on first enrolment, new claims, rotated?)``."""
        user = await self.accounts.get_user(current.id)
        credential = await self.totp_credential(current.id)
        now = datetime.now(UTC)
        if (
            credential is None
            or credential.pending_secret is None
            or credential.pending_created_at is None
            or credential.pending_created_at + _PENDING_SETUP_TTL <= now
        ):
            raise ProblemError("totp_setup_missing")
        await self.state(user.id)
        if await self.is_locked(user.id):
            await self.fail(user, client, method="totp", reason="locked", session_id=current.session_id)
        pending = credential.pending_secret
        step = totp.matching_step(self.box.decrypt(user.id, pending), code)
        if step is None:
            await self.fail(user, client, method="totp", reason="wrong_code", session_id=current.session_id)
        rotated = credential.enabled_at is not None
        # Conditional on the very pending secret we checked: two concurrent confirmations cannot both apply.
        swapped = await self.db.execute(
            update(TotpCredential)
            .where(TotpCredential.id == credential.id, TotpCredential.pending_secret == pending)
            .values(secret=pending, pending_secret=None, pending_created_at=None, enabled_at=now, last_step=step)
            .execution_options(synchronize_session=False)
        )
        if swapped.rowcount != 1:  # type: ignore[attr-defined]
            await self.fail(user, client, method="totp", reason="replay", session_id=current.session_id)
        await self.reset_failures(user.id)
        codes = None if rotated else await self._new_backup_codes(user.id)
        await self.accounts.revoke_other_sessions(
            user.id, current.session_id, client, reason="totp_reset" if rotated else "totp_enrolled"
        )
        event = "totp_reset" if rotated else "totp_enrolled"
        await self.accounts.record_event(event, user_id=user.id, client=client, session_id=current.session_id)
        await self.notify(
            user.email,
            "Authenticator app changed" if rotated else "Two-factor authentication enabled",
            "An authenticator app was "
            + ("re-registered" if rotated else "registered")
            + " for your SignalOS account and your other sessions were signed out. If this was not you, "
            "contact support at once.",
        )
        return codes, await self._elevate(current, "otp"), rotated

    async def disable(self, current: CurrentUser, client: ClientInfo, password: str, factor: SecondFactor) -> None:
        """Turn 2FA off: password AND a TOTP or backup code in the request; other sessions are revoked."""
        if not await self.enrolled(current.id):
            raise ProblemError("totp_not_enabled")
        user = await self.check_password(current, client, password)
        if not factor.given:
            raise ProblemError("step_up_required", detail="Disabling needs your authenticator code or a backup code")
        await self._check_strong(current, client, factor)
        await self.db.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
        await self.db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
        await self.accounts.revoke_other_sessions(user.id, current.session_id, client, reason="totp_disabled")
        await self.accounts.record_event("totp_disabled", user_id=user.id, client=client, session_id=current.session_id)
        await self.notify(
            user.email,
            "Two-factor authentication disabled",
            "Two-factor authentication was turned off for your SignalOS account and your other sessions were "
            "signed out. If this was not you, contact support at once.",
        )

    # ------------------------------------------------------------------ backup codes
    async def _new_backup_codes(self, user_id: UUID) -> list[str]:
        await self.db.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
        codes = backup.generate_codes()
        now = datetime.now(UTC)
        for code in codes:
            parsed = backup.split_code(code)
            assert parsed is not None  # noqa: S101 - generated in the accepted format
            self.db.add(
                BackupCode(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    code_id=parsed[0],
                    code_hash=self.passwords.hash(parsed[1]),
                    created_at=now,
                )
            )
        await self.db.flush()
        return codes

    async def regenerate_backup_codes(
        self, current: CurrentUser, client: ClientInfo, factor: SecondFactor
    ) -> list[str]:
        """A new set of backup codes (step-up); the old set stops working at once."""
        if not await self.enrolled(current.id):
            raise ProblemError("totp_not_enabled")
        await self.require_step_up(current, client, factor)
        codes = await self._new_backup_codes(current.id)
        user = await self.accounts.get_user(current.id)
        await self.accounts.record_event(
            "backup_regenerated", user_id=user.id, client=client, session_id=current.session_id
        )
        await self.notify(
            user.email, "New backup codes", "A new set of backup codes was created; the old codes no longer work."
        )
        return codes

    # ------------------------------------------------------------------ contacts
    async def start_contact_change(
        self, current: CurrentUser, client: ClientInfo, *, channel: str, value: str, password: str, factor: SecondFactor
    ) -> OneTimeCode:
        """Change email or phone, step 1: password + step-up, then a code to the NEW address."""
        if channel == "sms":
            value = value.strip().replace(" ", "")
            if re.fullmatch(_PHONE_RE, value, re.ASCII) is None:
                raise ProblemError(
                    "validation_error",
                    extra={"errors": [{"field": "phone", "message": "an E.164 number such as +447911123456"}]},
                )
        else:
            value = normalise_email(value)
        user = await self.check_password(current, client, password)
        await self.require_step_up(current, client, factor)
        return await self.send_code(
            user,
            client,
            channel=channel,
            purpose="verify_contact",
            destination=value,
            target=value,
            session_id=current.session_id,
        )

    async def confirm_contact_change(self, current: CurrentUser, client: ClientInfo, channel: str, code: str) -> str:
        """Change email or phone, step 2: the code sent to the new address; returns the new value."""
        user = await self.accounts.get_user(current.id)
        await self.check(user, client, channel, code, purpose="verify_contact", session_id=current.session_id)
        target = self.verified_target
        if target is None:  # pragma: no cover - verify_contact codes always carry their target
            raise ProblemError("invalid_second_factor")
        old_email = user.email
        if channel == "sms":
            state = await self.state(user.id)
            state.phone, state.phone_verified_at = target, datetime.now(UTC)
            event = "phone_changed"
        else:
            user.email = target
            # The code just came back from the new address: it is verified (the change cleared the old proof).
            user.email_verified_at = datetime.now(UTC)
            try:
                await self.db.flush()
            except IntegrityError:
                await self.db.rollback()
                raise ProblemError("email_taken") from None
            await self.accounts.revoke_other_sessions(user.id, current.session_id, client, reason="email_changed")
            event = "email_changed"
        await self.accounts.record_event(event, user_id=user.id, client=client, session_id=current.session_id)
        # The notice goes to the OLD address too: an attacker changing the email must not silence the owner.
        await self.notify(
            old_email,
            "Contact details changed",
            f"The {'phone number' if channel == 'sms' else 'email address'} of your SignalOS account was changed. "
            "If this was not you, contact support at once.",
        )
        return target

    async def remove_phone(self, current: CurrentUser, client: ClientInfo, password: str, factor: SecondFactor) -> None:
        """Remove the phone number (password + step-up)."""
        user = await self.check_password(current, client, password)
        await self.require_step_up(current, client, factor)
        await self.state(user.id)
        await self.db.execute(
            update(MfaState).where(MfaState.user_id == user.id).values(phone=None, phone_verified_at=None)
        )
        await self.accounts.record_event("phone_removed", user_id=user.id, client=client, session_id=current.session_id)

    # ------------------------------------------------------------------ operator recovery
    async def operator_reset(self, email: str) -> User:
        """Support's reset for a user who lost every factor: 2FA off, all sessions revoked, trading on hold."""
        user = await self.db.scalar(select(User).where(User.email == normalise_email(email)))
        if user is None:
            raise ProblemError("not_found", detail="No such user")
        await self.db.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
        await self.db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
        hold = datetime.now(UTC) + self.settings.recovery_trading_hold
        await self.state(user.id)
        await self.db.execute(
            update(MfaState)
            .where(MfaState.user_id == user.id)
            .values(trading_hold_until=hold, failed_count=0, locked_until=None)
        )
        user.token_version += 1
        await self.accounts.revoke_other_sessions(
            user.id, None, ClientInfo(ip=None, user_agent="signalos-cli"), reason="operator_reset"
        )
        await self.accounts.record_event(
            "totp_reset", user_id=user.id, detail={"by": "operator", "trading_hold_until": hold.isoformat()}
        )
        await self.notify(
            user.email,
            "Two-factor authentication reset by support",
            "Support reset two-factor authentication on your SignalOS account after an identity check. All sessions "
            f"were signed out and trading is on hold until {hold:%Y-%m-%d %H:%M} UTC. Enrol a new authenticator now. "
            "If you did not ask for this, contact support at once.",
        )
        return user

    async def rotate_keys(self) -> dict[str, int]:
        """Re-encrypt every TOTP secret (enabled and pending) under the newest data key."""
        counts = {"rotated": 0, "already_current": 0, "failed": 0}
        for credential in list(await self.db.scalars(select(TotpCredential))):
            for column in ("secret", "pending_secret"):
                blob: bytes | None = getattr(credential, column)
                if blob is None:
                    continue
                if self.box.is_current(blob):
                    counts["already_current"] += 1
                    continue
                try:
                    plain = self.box.decrypt(credential.user_id, blob)
                except ValueError:
                    counts["failed"] += 1
                    continue
                setattr(credential, column, self.box.encrypt(credential.user_id, plain))
                counts["rotated"] += 1
        await self.db.flush()
        return counts


def twofactor_runtime(app_state: Any, settings: Settings) -> tuple[SecretBox, Senders]:
    """The app-wide secret box and senders (built once per app, cached in ``app.state``)."""
    runtime = app_state.get(_RUNTIME_KEY)
    if runtime is None:
        runtime = (SecretBox(settings.data_keys), build_senders(settings))
        app_state[_RUNTIME_KEY] = runtime
    return runtime  # type: ignore[no-any-return]


async def provide_twofactor_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> TwoFactorService:
    """Dependency: the two-factor service on the request's database session."""
    state = request.app.state
    box, senders = twofactor_runtime(state, state.settings)
    return TwoFactorService(db_session, state.settings, state.passwords, box, senders)
