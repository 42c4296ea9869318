"""The ``mfa_pending`` token: what a correct password earns a 2FA user, usable only to finish logging in.

It is a JWT with its own ``typ`` (``mfa_pending``) and ``aud`` (``<SIGNALOS_JWT_AUDIENCE>:mfa_pending``) and is
signed with a key derived from the JWT secret by HKDF, so the access-token middleware refuses it on every
route three times over (audience, type, signature). Only the two handlers guarded by :func:`mfa_pending_token`
(verify and send-code) accept it; its ``jti`` names an :class:`~service.twofactor.models.MfaChallenge` row that
makes it single use with a few attempts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import attrs
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.problems import ProblemError
from service.security.guards import GUARD_NAMES
from service.settings import Settings
from service.twofactor import problem_codes  # noqa: F401 - importing registers the area's problem codes

__all__ = [
    "PENDING_TOKEN_TYPE",
    "FloodGuard",
    "PendingClaims",
    "decode_pending_token",
    "issue_pending_token",
    "mfa_flood_guard",
    "mfa_pending_token",
    "pending_claims",
]

PENDING_TOKEN_TYPE: Final = "mfa_pending"  # noqa: S105 - a token type name, not a secret
_ALGORITHM: Final = "HS256"
_STATE_KEY: Final = "signalos_mfa_pending"
_FLOOD_KEY: Final = "signalos_mfa_flood_guard"


@attrs.frozen
class PendingClaims:
    """What a valid ``mfa_pending`` token says: who passed the password, and which challenge row it is."""

    user_id: UUID
    challenge_id: UUID


def _key(settings: Settings) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"signalos mfa_pending v1").derive(
        settings.jwt_secret.encode()
    )


def _audience(settings: Settings) -> str:
    return f"{settings.jwt_audience}:{PENDING_TOKEN_TYPE}"


def issue_pending_token(settings: Settings, user_id: UUID, challenge_id: UUID, expires_at: datetime) -> str:
    """Encode the pending token of challenge ``challenge_id``."""
    now = int(time.time())
    payload = {
        "sub": str(user_id),
        "jti": str(challenge_id),
        "typ": PENDING_TOKEN_TYPE,
        "aud": _audience(settings),
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(payload, _key(settings), algorithm=_ALGORITHM)


def decode_pending_token(settings: Settings, token: str) -> PendingClaims | None:
    """The claims of a valid, unexpired pending token, or ``None`` for anything else."""
    try:
        payload = jwt.decode(
            token,
            _key(settings),
            algorithms=[_ALGORITHM],
            audience=_audience(settings),
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "jti", "aud", "iss", "typ"]},
        )
        if payload.get("typ") != PENDING_TOKEN_TYPE:
            return None
        return PendingClaims(user_id=UUID(payload["sub"]), challenge_id=UUID(payload["jti"]))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None


def mfa_pending_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: ``Authorization: Bearer <mfa_token>`` must be a valid pending token (401 ``mfa_token_invalid``)."""
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    claims = decode_pending_token(connection.app.state.settings, token.strip()) if scheme.lower() == "bearer" else None
    if claims is None:
        raise ProblemError("mfa_token_invalid")
    connection.state[_STATE_KEY] = claims


def pending_claims(connection: ASGIConnection[Any, Any, Any, Any]) -> PendingClaims:
    """The claims :func:`mfa_pending_token` verified for this request."""
    claims = connection.state.get(_STATE_KEY)
    if not isinstance(claims, PendingClaims):  # pragma: no cover - the guard always runs first
        raise ProblemError("mfa_token_invalid")
    return claims


class FloodGuard:
    """Per-IP fixed one-minute window over the second-factor endpoints (in memory, per process).

    Only a flood guard: the real protection is the per-account failure counter in the database.
    """

    _MAX_TRACKED = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def hit(self, ip: str, now: float | None = None) -> int | None:
        """Count a request from ``ip``; the seconds to wait if it is over the limit, else ``None``."""
        if self.per_minute <= 0:
            return None
        current = int((time.time() if now is None else now) // 60)
        window, count = self._windows.pop(ip, (current, 0))
        if window != current:
            window, count = current, 0
        count += 1
        self._windows[ip] = (window, count)
        while len(self._windows) > self._MAX_TRACKED:
            self._windows.popitem(last=False)
        if count > self.per_minute:
            return max(1, (window + 1) * 60 - int(time.time() if now is None else now))
        return None


def mfa_flood_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 429 ``rate_limited`` when one IP hammers the second-factor endpoints."""
    state = connection.app.state
    guard = state.get(_FLOOD_KEY)
    if guard is None:
        guard = FloodGuard(state.settings.mfa_ip_rate_per_minute)
        state[_FLOOD_KEY] = guard
    wait = guard.hit(connection.client.host if connection.client else "unknown")
    if wait is not None:
        raise ProblemError(
            "rate_limited",
            detail="Too many second-factor requests from this address",
            headers={"Retry-After": str(wait)},
        )


GUARD_NAMES.update({"mfa_pending_token", "mfa_flood_guard"})
