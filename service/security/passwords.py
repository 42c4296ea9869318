"""argon2id password hashing with a dummy hash so unknown users cost the same time as wrong passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["PasswordService"]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


class PasswordService:
    """Hash and verify passwords with argon2id; parameters come from the settings."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the account does not exist, so both paths do one argon2 verify.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, encoded: str | None, password: str) -> bool:
        """Check ``password`` against ``encoded`` (or the dummy hash when ``None``) in constant time."""
        try:
            return self._hasher.verify(encoded or self._dummy_hash, password) and encoded is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether ``encoded`` was made with older parameters."""
        return self._hasher.check_needs_rehash(encoded)

    @staticmethod
    def policy_problem(password: str, email: str) -> str | None:
        """Why ``password`` is refused, or ``None`` (NIST 800-63B: length, not composition rules)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
        if len(password) > MAX_PASSWORD_LENGTH:
            return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
        if password.strip().lower() == email.strip().lower():
            return "password must not be the email address"
        return None
