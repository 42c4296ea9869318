"""TOTP (RFC 6238, SHA-1, 6 digits, 30 s) helpers over pyotp: secrets, provisioning, strict code matching.

pyotp NFKC-normalises codes before comparing, so full-width ``４６４０８８`` would verify as ``464088``;
:func:`matching_step` therefore refuses anything but exactly six ASCII digits *before* pyotp sees it.
The caller stores the returned time step and accepts a code only for a later step (replay protection).
"""

from __future__ import annotations

import re
from typing import Final

import pyotp
import segno
from pyotp.exceptions import OTPVerificationError

__all__ = ["CODE_PATTERN", "DIGITS", "INTERVAL", "VALID_WINDOW", "matching_step", "new_secret", "provisioning"]

DIGITS: Final = 6
INTERVAL: Final = 30
VALID_WINDOW: Final = 1  # one step either side (RFC 6238 §5.2: at most one step of network delay)
CODE_PATTERN: Final = re.compile(r"[0-9]{6}", re.ASCII)


def new_secret() -> str:
    """A fresh 160-bit base32 secret from the OS CSPRNG (RFC 4226 R6 recommends 160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning(secret: str, account: str, issuer: str) -> tuple[str, str]:
    """The ``otpauth://`` URI for ``secret`` and a QR code of it as an SVG data URI (segno, no network)."""
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(name=account, issuer_name=issuer)
    qr = segno.make(uri, error="m").svg_data_uri(scale=4)
    return uri, qr


def matching_step(secret: str, code: str, *, for_time: float | None = None) -> int | None:
    """The time step ``code`` is valid for (now ±1 step), or ``None``. Only ``^[0-9]{6}$`` ASCII is considered."""
    if not isinstance(code, str) or CODE_PATTERN.fullmatch(code) is None:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    try:
        return totp.verify_and_get_timecode(code, for_time=for_time, valid_window=VALID_WINDOW)
    except (OTPVerificationError, ValueError):  # ValueError: a time before the epoch's first steps; fail closed
        return None
