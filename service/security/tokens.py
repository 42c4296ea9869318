"""Access tokens: short-lived HS256 JWTs bound to a server-side session.

Claims: ``sub`` (user id), ``sid`` (session id), ``jti``, ``iat``, ``exp``, ``iss``, ``aud``, ``typ``
(``access``), ``amr`` (methods used, e.g. ``["pwd", "otp"]``), ``aal`` (1 or 2) and ``auth_time`` (when the
user last proved a factor). No PII and no secret is ever put in a token.

Every request looks the session up: a revoked, expired or idle session, or a user whose ``token_version``
changed (password change, 2FA reset), makes :func:`_revoked_token_handler` reject the token at once instead
of waiting for ``exp``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts.models import Firm, Session, User
from service.settings import Settings
from service.twofactor.models import MfaState, TotpCredential

__all__ = ["ACCESS_TOKEN_TYPE", "AccessClaims", "AccessToken", "CurrentUser", "build_jwt_auth", "issue_access_token"]

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a token type name, not a secret
JWT_ALGORITHM = "HS256"
# last_used_at is written at most this often, so reads do not turn every request into a write.
_LAST_USED_RESOLUTION = timedelta(seconds=60)
_LOOKUP_STATE_KEY = "signalos_auth_lookup"

PUBLIC_PATHS = [
    "^/health$",
    "^/ready$",
    "^/schema",
    "^/problems",
    "^/api/auth/register$",
    "^/api/auth/login$",
    "^/api/auth/refresh$",
    # Finishing a 2FA login: these take the mfa_pending token instead (service/twofactor/pending.py guards them).
    "^/api/auth/2fa/verify$",
    "^/api/auth/2fa/send-code$",
]


@dataclass
class AccessToken(Token):
    """The JWT payload: registered claims plus ours, flat at the top level (not under ``extras``)."""

    typ: str = ""
    sid: str = ""
    amr: list[str] = field(default_factory=list)
    aal: int = 1
    auth_time: int = 0
    tv: int = -1  # the user's token_version when issued


@attrs.frozen
class AccessClaims:
    """What an access token asserts besides its subject."""

    sid: UUID
    amr: tuple[str, ...]
    aal: int
    auth_time: datetime
    token_version: int


@attrs.frozen
class CurrentUser:
    """The authenticated caller, as guards and handlers see it (``request.user``)."""

    id: UUID
    email: str
    role: str
    firm_id: UUID | None
    session_id: UUID
    aal: int
    amr: tuple[str, ...]
    auth_time: datetime
    # Whether this user must present a second factor (aal2) for trading, compliance, sync and marketplace
    # endpoints: because they enrolled 2FA, or because their firm requires it.
    mfa_enrolled: bool = False
    firm_requires_2fa: bool = False
    # Set after an operator reset 2FA for a user with no factor left: trading guards refuse until then.
    trading_hold_until: datetime | None = None


def issue_access_token(
    auth: JWTAuth[CurrentUser, AccessToken], settings: Settings, user_id: UUID, claims: AccessClaims
) -> str:
    """Encode a new access token for ``user_id`` in session ``claims.sid``."""
    return auth.create_token(
        identifier=str(user_id),
        token_expiration=settings.access_token_ttl,
        token_issuer=settings.jwt_issuer,
        token_audience=settings.jwt_audience,
        token_unique_jwt_id=uuid.uuid4().hex,
        typ=ACCESS_TOKEN_TYPE,
        sid=str(claims.sid),
        tv=claims.token_version,
        amr=list(claims.amr),
        aal=claims.aal,
        auth_time=int(claims.auth_time.timestamp()),
    )


def _sessionmaker(connection: ASGIConnection[Any, Any, Any, Any]) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = connection.app.state.sessionmaker
    return maker


def _parse_claims(token: AccessToken) -> tuple[UUID, UUID] | None:
    if token.typ != ACCESS_TOKEN_TYPE:
        return None
    try:
        return UUID(token.sub), UUID(token.sid)
    except (ValueError, TypeError):
        return None


async def _retrieve_user(token: AccessToken, connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    parsed = _parse_claims(token)
    if parsed is None:
        return None
    user_id, session_id = parsed
    settings: Settings = connection.app.state.settings
    now = datetime.now(UTC)
    async with _sessionmaker(connection)() as db:
        row = (
            await db.execute(
                select(User, Session, Firm.require_2fa, TotpCredential.enabled_at, MfaState.trading_hold_until)
                .join(Session, Session.user_id == User.id)
                .outerjoin(Firm, Firm.id == User.firm_id)
                .outerjoin(TotpCredential, TotpCredential.user_id == User.id)
                .outerjoin(MfaState, MfaState.user_id == User.id)
                .where(User.id == user_id, Session.id == session_id)
            )
        ).first()
        if row is None:
            connection.state[_LOOKUP_STATE_KEY] = False
            return None
        user, session, firm_requires_2fa, totp_enabled_at, trading_hold_until = row
        token_version_ok = token.tv == user.token_version
        active = (
            session.revoked_at is None
            and session.expires_at > now
            and session.last_used_at + settings.session_idle_ttl > now
            and token_version_ok
        )
        connection.state[_LOOKUP_STATE_KEY] = active
        if active and now - session.last_used_at > _LAST_USED_RESOLUTION:
            await db.execute(update(Session).where(Session.id == session.id).values(last_used_at=now))
            await db.commit()
        return CurrentUser(
            id=user.id,
            email=user.email,
            role=user.role,
            firm_id=user.firm_id,
            session_id=session.id,
            aal=token.aal,
            amr=tuple(token.amr),
            auth_time=datetime.fromtimestamp(token.auth_time, tz=UTC),
            firm_requires_2fa=bool(firm_requires_2fa),
            mfa_enrolled=totp_enabled_at is not None,
            trading_hold_until=trading_hold_until,
        )


async def _revoked_token_handler(token: AccessToken, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    # _retrieve_user ran first and recorded whether the session is still usable.
    return connection.state.get(_LOOKUP_STATE_KEY) is not True


def build_jwt_auth(settings: Settings) -> JWTAuth[CurrentUser, AccessToken]:
    """The app's JWT backend: algorithm pinned, issuer and audience checked, revocation looked up per request."""
    return JWTAuth[CurrentUser, AccessToken](
        token_secret=settings.jwt_secret,
        token_cls=AccessToken,
        algorithm=JWT_ALGORITHM,
        retrieve_user_handler=_retrieve_user,
        revoked_token_handler=_revoked_token_handler,
        default_token_expiration=settings.access_token_ttl,
        accepted_issuers=[settings.jwt_issuer],
        accepted_audiences=[settings.jwt_audience],
        require_claims=["exp", "iat", "sub", "jti", "iss", "aud", "sid", "typ"],
        exclude=PUBLIC_PATHS,
        description="Access token from POST /api/auth/login or /api/auth/refresh (Bearer).",
    )
