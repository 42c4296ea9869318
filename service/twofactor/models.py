"""Tables of the second factor: TOTP credentials, per-account throttle state, backup codes, one-time codes and
``mfa_pending`` login challenges.

Nothing here is stored in plain text that would let somebody pass a second factor: the TOTP secret is
AES-GCM ciphertext bound to its user, backup codes are argon2id hashes, emailed/texted codes are HMACs.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types.datetime import DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import UUIDBase

__all__ = ["BackupCode", "MfaChallenge", "MfaState", "OneTimeCode", "TotpCredential"]


class TotpCredential(UUIDBase):
    """A user's authenticator-app secret. ``enabled_at`` set = 2FA enrolled; ``pending_secret`` = setup in progress.

    ``last_step`` is the RFC 6238 time step of the last accepted code: a code is accepted only for a later step,
    through one conditional UPDATE, so a code (or an older one) can never be replayed, even concurrently.
    """

    __tablename__ = "mfa_totp"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    pending_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    pending_created_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    enabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)


class MfaState(UUIDBase):
    """Per-account second-factor state: the shared failure counter and lock, the verified phone, a trading hold."""

    __tablename__ = "mfa_state"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    # Consecutive failures of ANY second-factor check (login, step-up, disable, backup, email/SMS codes).
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    phone_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Set by an operator's 2FA reset (recovery without any second factor): trading guards refuse until then.
    trading_hold_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class BackupCode(UUIDBase):
    """One single-use recovery code: ``code_id`` is its public 4-character prefix, ``code_hash`` argon2id."""

    __tablename__ = "mfa_backup_code"
    __table_args__ = (UniqueConstraint("user_id", "code_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    code_id: Mapped[str] = mapped_column(String(8))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class OneTimeCode(UUIDBase):
    """An emailed or texted code, stored as an HMAC bound to user, purpose, channel and this row's id."""

    __tablename__ = "mfa_otp_code"
    __table_args__ = (Index("ix_mfa_otp_code_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    # Where it was sent: the new phone number or email address for ``verify_contact``.
    target: Mapped[str | None] = mapped_column(String(320), default=None)
    key_id: Mapped[str] = mapped_column(String(16))
    code_hmac: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    invalidated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class MfaChallenge(UUIDBase):
    """The server side of an ``mfa_pending`` token (its ``jti``): single use, a few attempts, short-lived."""

    __tablename__ = "mfa_challenge"
    __table_args__ = (Index("ix_mfa_challenge_user_id", "user_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    device: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
