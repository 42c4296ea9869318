"""Problem codes of the two-factor area (registered at import; documented at ``GET /problems/{code}``)."""

from __future__ import annotations

from service.problems import register_problem

__all__ = ["CODES"]

_DECLARATIONS = (
    (
        "invalid_second_factor",
        401,
        "Invalid second factor",
        "The code is wrong, expired, already used, or second-factor checks are paused on this account after "
        "repeated failures. The response never says which; wait a few minutes and retry with a fresh code.",
    ),
    (
        "mfa_token_invalid",
        401,
        "Invalid or expired login challenge",
        "The mfa_pending token is missing, expired, already used or out of attempts: log in with your password again.",
    ),
    (
        "step_up_required",
        403,
        "Recent second factor required",
        "This change needs a second factor verified in the last few minutes: send `code` (authenticator) or "
        "`backup_code` in the request, or call POST /api/2fa/step-up first. Emailed or texted codes do not count.",
    ),
    (
        "trading_hold",
        403,
        "Trading on hold",
        "Two-factor authentication was reset by support after a recovery without any second factor; trading "
        "stays blocked until the hold ends (see docs/security.md).",
    ),
    ("totp_not_enabled", 409, "Two-factor authentication is not enabled", "Enrol an authenticator app first."),
    (
        "totp_setup_missing",
        409,
        "No authenticator setup in progress",
        "Call POST /api/2fa/totp/setup first; a pending setup expires after 15 minutes.",
    ),
    (
        "channel_unavailable",
        409,
        "Delivery channel unavailable",
        "Codes cannot be sent over this channel: it is not configured, or no verified phone number is on file.",
    ),
    (
        "code_resend_too_soon",
        429,
        "Code requested too soon",
        "A code was sent moments ago; wait for Retry-After seconds before asking for another.",
    ),
    (
        "code_quota_exceeded",
        429,
        "Too many codes requested",
        "The hourly number of emailed/texted codes for this account is used up; use your authenticator or a "
        "backup code, or retry later.",
    ),
    ("delivery_failed", 503, "Delivery failed", "The email or SMS could not be handed to the provider; retry later."),
)
CODES: tuple[str, ...] = tuple(declaration[0] for declaration in _DECLARATIONS)
"""The problem codes this area adds (docs/security.md and docs/errors.md list them)."""

for _code, _status, _title, _description in _DECLARATIONS:
    register_problem(_code, _status, _title, _description)
