"""Accounts: firms, users, login sessions, refresh tokens and the append-only auth event log."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from advanced_alchemy.types.datetime import DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import UUIDAuditBase, UUIDBase

__all__ = ["AuthEvent", "Firm", "RefreshToken", "Role", "Session", "User"]


class Role(enum.StrEnum):
    """What a user may do: trade their own accounts, administer one firm, or administer the platform."""

    TRADER = "trader"
    FIRM_ADMIN = "firm_admin"
    PLATFORM_ADMIN = "platform_admin"


class Firm(UUIDAuditBase):
    """A prop firm or broker whose admins manage its profiles and funded accounts."""

    __tablename__ = "firm"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    require_2fa: Mapped[bool] = mapped_column(Boolean, default=False)


class User(UUIDAuditBase):
    """A person who logs in. ``token_version`` bumps invalidate every access token at once.

    ``email_verified_at`` is when the owner last proved they receive mail at ``email`` (a code sent there and
    typed back). It belongs to that one address: assigning a different ``email`` clears it (see
    :func:`_email_changed`), so a verification can never carry over to an address nobody proved.
    """

    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default=Role.TRADER.value)
    firm_id: Mapped[UUID | None] = mapped_column(ForeignKey("firm.id", ondelete="RESTRICT"), default=None)
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    # Password-failure back-off, persisted so that a restart does not reset it.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    login_locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


@event.listens_for(User.email, "set")
def _email_changed(target: User, value: str, oldvalue: object, _initiator: object) -> None:
    """A stored user whose address changes loses its verification (fail closed when the old value is unknown)."""
    if inspect(target).transient or inspect(target).pending:
        return  # a new user: nothing was verified yet, and the constructor's keyword order must not matter
    if value != oldvalue:
        target.email_verified_at = None


class Session(UUIDBase):
    """One login: its id is the ``sid`` claim of every access token and the family of its refresh tokens."""

    __tablename__ = "auth_session"
    __table_args__ = (Index("ix_auth_session_user_id", "user_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    device: Mapped[str | None] = mapped_column(String(200), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    amr: Mapped[str] = mapped_column(String(100), default="pwd")
    aal: Mapped[int] = mapped_column(Integer, default=1)
    auth_time: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_used_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class RefreshToken(UUIDBase):
    """An opaque refresh token; only its SHA-256 is stored. ``rotated_at`` is set by the atomic rotation."""

    __tablename__ = "refresh_token"
    __table_args__ = (Index("ix_refresh_token_session_id", "session_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_id: Mapped[UUID] = mapped_column(ForeignKey("auth_session.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Who rotated it, as a hash of IP and user agent, for the concurrent-refresh grace.
    rotated_by: Mapped[str | None] = mapped_column(String(64), default=None)


class AuthEvent(UUIDBase):
    """Append-only security event (login_ok, login_fail, session_revoked, refresh_reuse_detected, ...).

    Never holds a secret: no password, code or token, only what happened, to whom, from where.
    """

    __tablename__ = "auth_event"
    __table_args__ = (Index("ix_auth_event_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), default=None)
    session_id: Mapped[UUID | None] = mapped_column(default=None)
    event: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
