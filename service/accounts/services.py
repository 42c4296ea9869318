"""Account logic: registration, password login with persisted back-off, sessions and refresh-token rotation.

Refresh tokens are opaque (256 random bits); only their SHA-256 is stored. Each use rotates the token with
one conditional UPDATE (``WHERE rotated_at IS NULL``): of two concurrent refreshes exactly one changes the
row and wins. Presenting an already-rotated token revokes the whole session (its "family"), except that the
same client (same IP and user agent) within ``SIGNALOS_REFRESH_REUSE_GRACE`` seconds gets a 409
``refresh_conflict`` instead (two tabs of one app refreshing at once); see docs/security.md.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import AuthEvent, Firm, RefreshToken, Role, Session, User
from service.problems import ProblemError
from service.security.passwords import PasswordService
from service.security.tokens import AccessClaims
from service.settings import Settings

__all__ = ["AccountService", "ClientInfo", "NewSession", "hash_token", "normalise_email"]

_MAX_BACKOFF = timedelta(hours=1)


def hash_token(token: str) -> str:
    """SHA-256 hex of an opaque token (what the database stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Validate syntax (no DNS lookups) and normalise an email address; 400 naming the field if invalid."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ProblemError("validation_error", extra={"errors": [{"field": "email", "message": str(exc)}]}) from None


@attrs.frozen
class ClientInfo:
    """Where a request comes from (for sessions and audit events)."""

    ip: str | None
    user_agent: str | None

    @property
    def fingerprint(self) -> str:
        """A hash identifying this client for the concurrent-refresh grace."""
        return hashlib.sha256(f"{self.ip}|{self.user_agent}".encode()).hexdigest()


@attrs.frozen
class NewSession:
    """A freshly issued session: the claims for its access token and its first refresh token."""

    user: User
    claims: AccessClaims
    refresh_token: str


class AccountService:
    """Everything the accounts controllers do, over one database session."""

    def __init__(self, db: AsyncSession, settings: Settings, passwords: PasswordService) -> None:
        self.db = db
        self.settings = settings
        self.passwords = passwords

    # ------------------------------------------------------------------ events
    async def record_event(
        self,
        event: str,
        *,
        user_id: UUID | None,
        client: ClientInfo | None = None,
        session_id: UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append a security event (never with a secret in ``detail``)."""
        self.db.add(
            AuthEvent(
                id=uuid.uuid4(),
                user_id=user_id,
                session_id=session_id,
                event=event,
                ip=client.ip if client else None,
                user_agent=client.user_agent if client else None,
                detail=detail or {},
                created_at=datetime.now(UTC),
            )
        )

    async def list_events(self, user_id: UUID, *, limit: int, offset: int) -> list[AuthEvent]:
        """The user's own events, newest first."""
        rows = await self.db.scalars(
            select(AuthEvent)
            .where(AuthEvent.user_id == user_id)
            .order_by(AuthEvent.created_at.desc(), AuthEvent.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows)

    # ------------------------------------------------------------------ users
    async def register(self, email: str, password: str, display_name: str | None) -> User:
        """Create a trader; 409 ``email_taken`` if the email exists, 422 ``weak_password`` by policy."""
        email = normalise_email(email)
        problem = self.passwords.policy_problem(password, email)
        if problem:
            raise ProblemError(
                "weak_password", detail=problem, extra={"errors": [{"field": "password", "message": problem}]}
            )
        user = User(
            id=uuid.uuid4(),
            email=email,
            password_hash=self.passwords.hash(password),
            role=Role.TRADER.value,
            display_name=display_name,
        )
        self.db.add(user)
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise ProblemError("email_taken") from None
        return user

    async def get_user(self, user_id: UUID) -> User:
        """The user with ``user_id`` or 404."""
        user = await self.db.get(User, user_id)
        if user is None:
            raise ProblemError("not_found", detail="No such user")
        return user

    async def authenticate(self, email: str, password: str, client: ClientInfo) -> User:
        """Check a password with persisted per-account back-off.

        Unknown email, wrong password and a backed-off account all raise the same 401 ``invalid_credentials``
        after one argon2 verification each, so neither the body nor the timing tells them apart.
        """
        now = datetime.now(UTC)
        try:
            email = normalise_email(email)
        except ProblemError:
            email = ""
        user = await self.db.scalar(select(User).where(User.email == email)) if email else None
        password_ok = self.passwords.verify(user.password_hash if user else None, password)
        if user is None:
            await self._fail_login(None, client, "unknown_user")
        assert user is not None  # for type checkers: _fail_login always raises  # noqa: S101
        if user.login_locked_until is not None and user.login_locked_until > now:
            await self._fail_login(user, client, "locked")
        if not password_ok:
            user.failed_logins += 1
            over = user.failed_logins - self.settings.login_max_failures
            if over >= 0:
                user.login_locked_until = now + min(self.settings.login_backoff_base * (2**over), _MAX_BACKOFF)
            await self._fail_login(user, client, "wrong_password")
        user.failed_logins = 0
        user.login_locked_until = None
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash(password)
        return user

    async def _fail_login(self, user: User | None, client: ClientInfo, reason: str) -> None:
        await self.record_event(
            "login_fail", user_id=user.id if user else None, client=client, detail={"reason": reason}
        )
        # Commit before raising: the error response rolls the request transaction back, the counter must stay.
        await self.db.commit()
        raise ProblemError("invalid_credentials", detail="Email or password is incorrect")

    # ------------------------------------------------------------------ sessions
    async def start_session(
        self, user: User, client: ClientInfo, *, device: str | None, amr: tuple[str, ...] = ("pwd",), aal: int = 1
    ) -> NewSession:
        """Open a session after the user proved ``amr``; returns its claims and first refresh token."""
        now = datetime.now(UTC)
        session = Session(
            id=uuid.uuid4(),
            user_id=user.id,
            device=device,
            ip=client.ip,
            user_agent=client.user_agent,
            amr=",".join(amr),
            aal=aal,
            auth_time=now,
            created_at=now,
            last_used_at=now,
            expires_at=now + self.settings.session_absolute_ttl,
        )
        self.db.add(session)
        await self.db.flush()  # no ORM relationships, so flush the session row before its refresh token
        refresh = await self._new_refresh_token(session, now)
        await self.record_event(
            "login_ok", user_id=user.id, client=client, session_id=session.id, detail={"amr": list(amr)}
        )
        return NewSession(user=user, claims=self._claims(session, user), refresh_token=refresh)

    def _claims(self, session: Session, user: User) -> AccessClaims:
        return AccessClaims(
            sid=session.id,
            amr=tuple(session.amr.split(",")),
            aal=session.aal,
            auth_time=session.auth_time,
            token_version=user.token_version,
        )

    async def _new_refresh_token(self, session: Session, now: datetime) -> str:
        token = secrets.token_urlsafe(32)
        expires = min(now + self.settings.refresh_token_ttl, session.expires_at)
        self.db.add(
            RefreshToken(
                id=uuid.uuid4(), token_hash=hash_token(token), session_id=session.id, created_at=now, expires_at=expires
            )
        )
        await self.db.flush()
        return token

    async def refresh(self, token: str, client: ClientInfo) -> NewSession:
        """Rotate ``token``: exactly one concurrent caller wins; reuse of a rotated token revokes the session."""
        now = datetime.now(UTC)
        row = (
            await self.db.execute(
                select(RefreshToken, Session, User)
                .join(Session, Session.id == RefreshToken.session_id)
                .join(User, User.id == Session.user_id)
                .where(RefreshToken.token_hash == hash_token(token))
            )
        ).first()
        if row is None:
            raise ProblemError("invalid_refresh_token")
        stored, session, user = row
        claimed = await self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.id == stored.id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now, rotated_by=client.fingerprint)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await self.db.refresh(stored)
            rotated_at = stored.rotated_at or now
            if stored.rotated_by == client.fingerprint and now - rotated_at <= self.settings.refresh_reuse_grace:
                raise ProblemError("refresh_conflict")
            await self._revoke(session.id, "refresh_reuse")
            await self.record_event("refresh_reuse_detected", user_id=user.id, client=client, session_id=session.id)
            await self.db.commit()
            raise ProblemError("invalid_refresh_token")
        if (
            session.revoked_at is not None
            or session.expires_at <= now
            or stored.expires_at <= now
            or session.last_used_at + self.settings.session_idle_ttl <= now
        ):
            await self.db.commit()
            raise ProblemError("invalid_refresh_token")
        session.last_used_at = now
        new_token = await self._new_refresh_token(session, now)
        return NewSession(user=user, claims=self._claims(session, user), refresh_token=new_token)

    async def list_sessions(self, user_id: UUID) -> list[Session]:
        """The user's live sessions, newest first."""
        now = datetime.now(UTC)
        rows = await self.db.scalars(
            select(Session)
            .where(Session.user_id == user_id, Session.revoked_at.is_(None), Session.expires_at > now)
            .order_by(Session.created_at.desc())
        )
        return [s for s in rows if s.last_used_at + self.settings.session_idle_ttl > now]

    async def _revoke(self, session_id: UUID, reason: str) -> int:
        result = await self.db.execute(
            update(Session)
            .where(Session.id == session_id, Session.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_session(self, user_id: UUID, session_id: UUID, client: ClientInfo, *, reason: str) -> None:
        """Revoke one of the user's own sessions; 404 for anybody else's (no existence oracle)."""
        owner = await self.db.scalar(select(Session.user_id).where(Session.id == session_id))
        if owner != user_id:
            raise ProblemError("not_found", detail="No such session")
        if await self._revoke(session_id, reason):
            await self.record_event(
                "session_revoked", user_id=user_id, client=client, session_id=session_id, detail={"reason": reason}
            )

    async def revoke_other_sessions(self, user_id: UUID, keep: UUID | None, client: ClientInfo, *, reason: str) -> int:
        """Revoke every live session of the user except ``keep``; returns how many."""
        query = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
        if keep is not None:
            query = query.where(Session.id != keep)
        result = await self.db.execute(
            query.values(revoked_at=datetime.now(UTC), revoked_reason=reason).execution_options(
                synchronize_session=False
            )
        )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        if count:
            await self.record_event(
                "session_revoked",
                user_id=user_id,
                client=client,
                session_id=keep,
                detail={"reason": reason, "count": count, "scope": "others"},
            )
        return count

    async def change_password(
        self, user_id: UUID, current: str, new: str, session_id: UUID, client: ClientInfo
    ) -> None:
        """Change the password after re-checking the current one; revokes every other session."""
        user = await self.get_user(user_id)
        if not self.passwords.verify(user.password_hash, current):
            await self.record_event("password_change_fail", user_id=user.id, client=client, session_id=session_id)
            await self.db.commit()
            raise ProblemError("invalid_credentials", detail="Current password is incorrect")
        problem = self.passwords.policy_problem(new, user.email)
        if problem:
            raise ProblemError(
                "weak_password", detail=problem, extra={"errors": [{"field": "new_password", "message": problem}]}
            )
        user.password_hash = self.passwords.hash(new)
        user.password_changed_at = datetime.now(UTC)
        await self.revoke_other_sessions(user.id, session_id, client, reason="password_changed")
        await self.record_event("password_changed", user_id=user.id, client=client, session_id=session_id)

    # ------------------------------------------------------------------ administration
    async def create_firm(self, name: str, require_2fa: bool) -> Firm:
        """Create a firm; 409 if the name exists."""
        firm = Firm(id=uuid.uuid4(), name=name, require_2fa=require_2fa)
        self.db.add(firm)
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise ProblemError("conflict", detail="A firm with this name exists") from None
        return firm

    async def list_firms(self) -> list[Firm]:
        """Every firm, by name."""
        return list(await self.db.scalars(select(Firm).order_by(Firm.name)))

    async def set_role(self, user_id: UUID, role: str, firm_id: UUID | None) -> User:
        """Change a user's role; a firm admin must name an existing firm, others must not."""
        user = await self.get_user(user_id)
        if role == Role.FIRM_ADMIN.value:
            if firm_id is None or await self.db.get(Firm, firm_id) is None:
                raise ProblemError(
                    "validation_error",
                    extra={"errors": [{"field": "firm_id", "message": "an existing firm is required for firm_admin"}]},
                )
        elif role == Role.PLATFORM_ADMIN.value and firm_id is not None:
            raise ProblemError(
                "validation_error",
                extra={"errors": [{"field": "firm_id", "message": "platform admins belong to no firm"}]},
            )
        user.role = role
        if firm_id is not None or role != Role.TRADER.value:
            user.firm_id = firm_id
        # No token_version bump needed: the role is read from the database on every request.
        return user

    async def count_users(self) -> int:
        """How many users exist (used by the CLI bootstrap)."""
        return int(await self.db.scalar(select(func.count()).select_from(User)) or 0)
