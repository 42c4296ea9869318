"""The one gate every second-factor check goes through, and the sending of emailed/texted codes.

:meth:`Verifier.check` is used by login, step-up, disable, enrolment confirmation, backup codes and contact
verification alike, so they all share ONE per-account failure counter in ``mfa_state`` (persisted, so a
restart does not reset it): after ``SIGNALOS_MFA_LOCKOUT_THRESHOLD`` consecutive failures the account's second
factor is locked for ``SIGNALOS_MFA_LOCKOUT_SECONDS``, doubling with each further failure up to
``SIGNALOS_MFA_LOCKOUT_MAX_SECONDS``. While locked every check fails, even with a correct code, with the same
answer as a wrong code. A success resets the counter.

Every "use once" rule is a conditional UPDATE whose row count decides: the TOTP step (``last_step < :step``),
a backup code (``used_at IS NULL``), an emailed/texted code (``consumed_at IS NULL``, ``attempts < max``).
Of two concurrent requests with the same code exactly one changes the row and wins.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final, NoReturn
from uuid import UUID

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import User
from service.accounts.services import AccountService, ClientInfo
from service.problems import ProblemError
from service.security.passwords import PasswordService
from service.settings import Settings
from service.twofactor import (
    backup,
    problem_codes,  # noqa: F401 - importing registers the area's problem codes
    totp,
)
from service.twofactor.crypto import DecryptionError, SecretBox
from service.twofactor.models import BackupCode, MfaState, OneTimeCode, TotpCredential
from service.twofactor.senders import DeliveryError, Message, Senders

__all__ = ["AMR", "STRONG_AMR", "Verifier", "lockout_duration"]

_log = structlog.get_logger("signalos.twofactor")

# Method name in requests -> value recorded in the session's ``amr`` (RFC 8176 where it has one).
AMR: Final = {"totp": "otp", "backup": "backup", "sms": "sms", "email": "email"}
STRONG_AMR: Final = frozenset({"otp", "backup"})
_CODE_DIGITS: Final = {"sms": 6, "email": 8}  # auth.md §4.12: 6 digits, 8 preferred for email


def lockout_duration(settings: Settings, failures: int) -> timedelta | None:
    """How long ``failures`` consecutive failures lock the second factor (``None``: below the threshold).

    The threshold-th failure locks for ``SIGNALOS_MFA_LOCKOUT_SECONDS``; each further one doubles it, capped at
    ``SIGNALOS_MFA_LOCKOUT_MAX_SECONDS``. The exponent is bounded so huge counts cannot overflow.
    """
    over = failures - settings.mfa_lockout_threshold
    if over < 0:
        return None
    return min(settings.mfa_lockout * (2 ** min(over, 20)), settings.mfa_lockout_max)


class Verifier:
    """Second-factor checks with the shared lockout, over one database session."""

    def __init__(
        self,
        db: AsyncSession,
        settings: Settings,
        passwords: PasswordService,
        box: SecretBox,
        senders: Senders,
    ) -> None:
        self.db = db
        self.settings = settings
        self.passwords = passwords
        self.box = box
        self.senders = senders
        self.accounts = AccountService(db, settings, passwords)
        # Where the last code accepted by :meth:`check` had been sent (the new contact for verify_contact).
        self.verified_target: str | None = None

    # ------------------------------------------------------------------ state and lockout
    async def state(self, user_id: UUID) -> MfaState:
        """The user's ``mfa_state`` row, created on first use (race-safe: INSERT ... ON CONFLICT DO NOTHING)."""
        insert = pg_insert if self.db.get_bind().dialect.name == "postgresql" else sqlite_insert
        await self.db.execute(
            insert(MfaState)
            .values(id=uuid.uuid4(), user_id=user_id, failed_count=0)
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        row = await self.db.scalar(
            select(MfaState).where(MfaState.user_id == user_id).execution_options(populate_existing=True)
        )
        assert row is not None  # noqa: S101 - inserted just above
        return row

    async def is_locked(self, user_id: UUID) -> bool:
        """Whether the account's second factor is locked right now."""
        state = await self.state(user_id)
        return state.locked_until is not None and state.locked_until > datetime.now(UTC)

    async def fail(
        self, user: User, client: ClientInfo, *, method: str, reason: str, session_id: UUID | None = None
    ) -> NoReturn:
        """Count a failure (locking when over the threshold), commit it, and raise ``invalid_second_factor``."""
        now = datetime.now(UTC)
        if reason != "locked":
            failures = int(
                await self.db.scalar(
                    update(MfaState)
                    .where(MfaState.user_id == user.id)
                    .values(failed_count=MfaState.failed_count + 1)
                    .returning(MfaState.failed_count)
                )
                or 0
            )
            duration = lockout_duration(self.settings, failures)
            if duration is not None:
                await self.db.execute(
                    update(MfaState).where(MfaState.user_id == user.id).values(locked_until=now + duration)
                )
                await self.accounts.record_event(
                    "lockout",
                    user_id=user.id,
                    client=client,
                    session_id=session_id,
                    detail={"failures": failures, "seconds": int(duration.total_seconds())},
                )
                await self.notify(user.email, "Second factor locked", _LOCKOUT_TEXT)
        await self.accounts.record_event(
            "mfa_fail",
            user_id=user.id,
            client=client,
            session_id=session_id,
            detail={"method": method, "reason": reason},
        )
        # Commit before raising: the error response rolls the request transaction back, the counter must stay.
        await self.db.commit()
        raise ProblemError("invalid_second_factor")

    async def reset_failures(self, user_id: UUID) -> None:
        """A success: forget previous failures and any expired lock."""
        await self.db.execute(
            update(MfaState).where(MfaState.user_id == user_id).values(failed_count=0, locked_until=None)
        )

    # ------------------------------------------------------------------ the gate
    async def check(
        self,
        user: User,
        client: ClientInfo,
        method: str,
        code: str,
        *,
        purpose: str = "login",
        session_id: UUID | None = None,
    ) -> str:
        """Verify ``code`` by ``method`` (totp, backup, email, sms) for ``purpose``; return its ``amr`` value.

        Raises 401 ``invalid_second_factor`` (after counting the failure) for a wrong, replayed, expired or
        malformed code and, without looking at the code, while the account is locked.
        """
        if method not in AMR:
            raise ProblemError("validation_error", extra={"errors": [{"field": "method", "message": "unknown"}]})
        if await self.is_locked(user.id):
            await self.fail(user, client, method=method, reason="locked", session_id=session_id)
        if method == "totp":
            reason = await self._check_totp(user.id, code)
        elif method == "backup":
            reason = await self._check_backup(user, client, code, session_id)
        else:
            reason = await self._check_code(user.id, method, purpose, code)
        if reason is not None:
            await self.fail(user, client, method=method, reason=reason, session_id=session_id)
        await self.reset_failures(user.id)
        return AMR[method]

    async def totp_credential(self, user_id: UUID) -> TotpCredential | None:
        """The user's TOTP row (enabled or pending), if any."""
        credential: TotpCredential | None = await self.db.scalar(
            select(TotpCredential).where(TotpCredential.user_id == user_id)
        )
        return credential

    async def _check_totp(self, user_id: UUID, code: str) -> str | None:
        credential = await self.totp_credential(user_id)
        if credential is None or credential.enabled_at is None or credential.secret is None:
            return "not_enrolled"
        try:
            secret = self.box.decrypt(user_id, credential.secret)
        except DecryptionError:
            _log.error("totp_secret_undecryptable", user_id=str(user_id))
            return "undecryptable"
        step = totp.matching_step(secret, code)
        if step is None:
            return "wrong_code"
        # RFC 6238 §5.2: accept each step once. One conditional UPDATE: of two concurrent requests with the
        # same code, exactly one changes the row; an older code (lower step) is refused the same way.
        claimed = await self.db.execute(
            update(TotpCredential)
            .where(
                TotpCredential.id == credential.id,
                TotpCredential.enabled_at.is_not(None),
                or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step),
            )
            .values(last_step=step)
            .execution_options(synchronize_session=False)
        )
        return None if claimed.rowcount == 1 else "replay"  # type: ignore[attr-defined]

    async def _check_backup(self, user: User, client: ClientInfo, code: str, session_id: UUID | None) -> str | None:
        parsed = backup.split_code(code)
        row = None
        if parsed is not None:
            row = await self.db.scalar(
                select(BackupCode).where(
                    BackupCode.user_id == user.id, BackupCode.code_id == parsed[0], BackupCode.used_at.is_(None)
                )
            )
        # One argon2 verification either way (against a dummy hash when there is no such code).
        if not self.passwords.verify(row.code_hash if row else None, parsed[1] if parsed else "-"):
            return "wrong_code"
        assert row is not None  # noqa: S101 - verify() is False without a row
        used = await self.db.execute(
            update(BackupCode)
            .where(BackupCode.id == row.id, BackupCode.used_at.is_(None))
            .values(used_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            return "replay"
        remaining = await self.backup_codes_remaining(user.id)
        await self.accounts.record_event(
            "backup_used", user_id=user.id, client=client, session_id=session_id, detail={"remaining": remaining}
        )
        await self.notify(
            user.email,
            "A backup code was used",
            f"A backup code was used to confirm a sign-in or a security change. {remaining} codes remain.\n"
            "If this was not you, change your password and contact support at once.",
        )
        return None

    async def backup_codes_remaining(self, user_id: UUID) -> int:
        """How many unused backup codes the user has."""
        return int(
            await self.db.scalar(
                select(func.count())
                .select_from(BackupCode)
                .where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
            )
            or 0
        )

    async def _check_code(self, user_id: UUID, channel: str, purpose: str, code: str) -> str | None:
        now = datetime.now(UTC)
        row = await self.db.scalar(
            select(OneTimeCode)
            .where(
                OneTimeCode.user_id == user_id,
                OneTimeCode.purpose == purpose,
                OneTimeCode.channel == channel,
                OneTimeCode.consumed_at.is_(None),
                OneTimeCode.invalidated_at.is_(None),
                OneTimeCode.expires_at > now,
            )
            .order_by(OneTimeCode.created_at.desc())
            .limit(1)
        )
        if row is None:
            return "no_active_code"
        counted = await self.db.execute(
            update(OneTimeCode)
            .where(
                OneTimeCode.id == row.id,
                OneTimeCode.consumed_at.is_(None),
                OneTimeCode.attempts < self.settings.otp_max_attempts,
            )
            .values(attempts=OneTimeCode.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if counted.rowcount != 1:  # type: ignore[attr-defined]
            return "attempts_exhausted"
        digits = _CODE_DIGITS[channel]
        if not isinstance(code, str) or re.fullmatch(f"[0-9]{{{digits}}}", code, re.ASCII) is None:
            return "malformed"
        expected = self._code_mac(row.key_id, row, code)
        if not expected or not hmac.compare_digest(expected, row.code_hmac):
            return "wrong_code"
        consumed = await self.db.execute(
            update(OneTimeCode)
            .where(OneTimeCode.id == row.id, OneTimeCode.consumed_at.is_(None))
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        if consumed.rowcount != 1:  # type: ignore[attr-defined]
            return "replay"
        self.verified_target = row.target
        return None

    def _code_mac(self, key_id: str, row: OneTimeCode, code: str) -> str:
        # Bound to user, purpose, channel, target and this row: a code is useless anywhere else.
        return self.box.code_mac(
            key_id, str(row.user_id), row.purpose, row.channel, row.target or "", str(row.id), code
        )

    # ------------------------------------------------------------------ sending codes
    async def send_code(
        self,
        user: User,
        client: ClientInfo,
        *,
        channel: str,
        purpose: str,
        destination: str,
        target: str | None = None,
        session_id: UUID | None = None,
    ) -> OneTimeCode:
        """Create a code for ``purpose``, invalidate older ones, and deliver it (cooldown and hourly cap apply)."""
        sender = self.senders.for_channel(channel)
        if sender is None:
            raise ProblemError("channel_unavailable", detail=f"{channel} delivery is not configured")
        now = datetime.now(UTC)
        last = await self.db.scalar(
            select(func.max(OneTimeCode.created_at)).where(
                OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, OneTimeCode.channel == channel
            )
        )
        if last is not None and now - last < self.settings.otp_resend_cooldown:
            wait = self.settings.otp_resend_cooldown - (now - last)
            raise ProblemError(
                "code_resend_too_soon", headers={"Retry-After": str(max(1, int(wait.total_seconds()) + 1))}
            )
        sent_last_hour = int(
            await self.db.scalar(
                select(func.count())
                .select_from(OneTimeCode)
                .where(OneTimeCode.user_id == user.id, OneTimeCode.created_at > now - timedelta(hours=1))
            )
            or 0
        )
        if sent_last_hour >= self.settings.otp_hourly_cap:
            raise ProblemError("code_quota_exceeded", headers={"Retry-After": "3600"})
        # A resend invalidates every earlier live code of the same purpose and channel (OWASP).
        await self.db.execute(
            update(OneTimeCode)
            .where(
                OneTimeCode.user_id == user.id,
                OneTimeCode.purpose == purpose,
                OneTimeCode.channel == channel,
                OneTimeCode.consumed_at.is_(None),
                OneTimeCode.invalidated_at.is_(None),
            )
            .values(invalidated_at=now)
            .execution_options(synchronize_session=False)
        )
        digits = _CODE_DIGITS[channel]
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        row = OneTimeCode(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=purpose,
            channel=channel,
            target=target,
            key_id=self.box.current_key_id,
            code_hmac="",
            attempts=0,
            created_at=now,
            expires_at=now + self.settings.otp_ttl,
        )
        row.code_hmac = self._code_mac(row.key_id, row, code)
        self.db.add(row)
        await self.db.flush()
        minutes = max(1, int(self.settings.otp_ttl.total_seconds()) // 60)
        text = _CODE_TEXT[purpose].format(code=code, minutes=minutes)
        try:
            await sender.send(Message(channel=channel, to=destination, subject="Your SignalOS code", body=text))  # type: ignore[arg-type]
        except DeliveryError:
            raise ProblemError("delivery_failed") from None
        await self.accounts.record_event(
            "otp_sent",
            user_id=user.id,
            client=client,
            session_id=session_id,
            detail={"channel": channel, "purpose": purpose},
        )
        return row

    async def notify(self, to: str, subject: str, body: str) -> None:
        """Best-effort security notification by email to ``to``; a delivery failure is logged, never raised."""
        if self.senders.email is None:
            return
        try:
            await self.senders.email.send(Message(channel="email", to=to, subject=subject, body=body))
        except DeliveryError:
            _log.warning("notification_not_delivered", subject=subject)


_LOCKOUT_TEXT: Final = (
    "Several wrong second-factor codes were entered for your SignalOS account, so second-factor checks are "
    "paused for a while. If this was not you, your password is known to someone else: change it."
)
_CODE_TEXT: Final = {
    "login": "Your SignalOS sign-in code is {code}. It expires in {minutes} minutes. Never share it.",
    "verify_contact": "Your SignalOS verification code is {code}. It expires in {minutes} minutes.",
    "verify_email": "Your SignalOS email verification code is {code}. It expires in {minutes} minutes.",
}
