"""Backup (recovery) codes: 10 per set, shown once, stored as salted argon2id hashes, single use.

A code is ``XXXX-XXXX-XXXX-XXXX`` over a 32-letter alphabet without look-alikes: the first group is a public
id (20 bits, unique within the user's set) that selects the one row to check, so verification costs exactly
one argon2id hash; the other 12 letters carry 60 random bits. NIST 800-63B allows codes under 112 bits when
they are salted and hashed with a KDF and attempts are rate limited (our shared lockout).
"""

from __future__ import annotations

import re
import secrets
from typing import Final

__all__ = ["BACKUP_CODE_COUNT", "generate_codes", "split_code"]

BACKUP_CODE_COUNT: Final = 10
_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols: no I, O, 0, 1
_ID_LENGTH: Final = 4
_SECRET_LENGTH: Final = 12
_CODE_RE: Final = re.compile(f"[{_ALPHABET}]{{{_ID_LENGTH + _SECRET_LENGTH}}}", re.ASCII)


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def generate_codes(count: int = BACKUP_CODE_COUNT) -> list[str]:
    """``count`` fresh codes with distinct ids, formatted in groups of four."""
    codes: list[str] = []
    ids: set[str] = set()
    while len(codes) < count:
        code_id = _random(_ID_LENGTH)
        if code_id in ids:
            continue
        ids.add(code_id)
        raw = code_id + _random(_SECRET_LENGTH)
        codes.append("-".join(raw[i : i + 4] for i in range(0, len(raw), 4)))
    return codes


def split_code(code: str) -> tuple[str, str] | None:
    """``(id, whole normalised code)`` of a typed code (case, spaces and dashes ignored), or ``None`` if malformed."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    raw = re.sub(r"[\s-]", "", code).upper()
    if _CODE_RE.fullmatch(raw) is None:
        return None
    return raw[:_ID_LENGTH], raw
