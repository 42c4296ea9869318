"""Email verification: the owner proves that mail sent to the account's address reaches them.

Nothing here re-implements codes. A verification code is an emailed one-time code of the two-factor area
(:class:`~service.twofactor.verifier.Verifier`) with purpose ``verify_email``: stored only as an HMAC bound to
the user, the purpose, the email channel, the address it went to and its own row; it expires after
``SIGNALOS_OTP_TTL``, is single use, allows ``SIGNALOS_OTP_MAX_ATTEMPTS`` guesses, and obeys the resend
cooldown and the hourly cap shared with every other emailed/texted code. A wrong code counts on the per-account
second-factor failure counter (and its lockout) exactly like a wrong login code.

The address is part of the code: a code sent before an email change cannot verify the new address (the model
clears ``email_verified_at`` on any change of ``email``; see :class:`service.accounts.models.User`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from service.accounts.models import User
from service.accounts.services import ClientInfo
from service.security.tokens import CurrentUser
from service.twofactor.verifier import Verifier

__all__ = ["PURPOSE", "EmailVerification"]

PURPOSE: Final = "verify_email"


class EmailVerification:
    """Send and check email-verification codes through the two-factor code machinery of ``verifier``."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    async def send(self, current: CurrentUser, client: ClientInfo) -> None:
        """Email a code to the caller's current address (cooldown and hourly cap apply).

        An address that is already verified gets no mail, but the caller gets the same answer as when a code
        was sent: the response never depends on the account's state, and nobody can use this to flood a
        verified mailbox.
        """
        user = await self.verifier.accounts.get_user(current.id)
        if user.email_verified_at is not None:
            return
        await self.verifier.send_code(
            user,
            client,
            channel="email",
            purpose=PURPOSE,
            destination=user.email,
            target=user.email,
            session_id=current.session_id,
        )

    async def verify(self, current: CurrentUser, client: ClientInfo, code: str) -> User:
        """Check ``code`` and mark the caller's address verified; returns the user.

        401 ``invalid_second_factor`` (counted) for a wrong, expired, used or stale code, and while second-factor
        checks are locked. Verifying an already verified address is a no-op that succeeds.
        """
        user = await self.verifier.accounts.get_user(current.id)
        if user.email_verified_at is not None:
            return user
        await self.verifier.check(user, client, "email", code, purpose=PURPOSE, session_id=current.session_id)
        if self.verifier.verified_target != user.email:
            # The code went to an address this account no longer has: it proves nothing about the current one.
            await self.verifier.fail(
                user, client, method="email", reason="stale_address", session_id=current.session_id
            )
        user.email_verified_at = datetime.now(UTC)
        await self.verifier.accounts.record_event(
            "email_verified", user_id=user.id, client=client, session_id=current.session_id
        )
        return user
