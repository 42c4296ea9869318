"""Encryption of TOTP secrets at rest and the keyed hashes of one-time codes.

Keys come from ``Settings.data_keys`` (environment or key file, newest first), never from the database.
Each data key is expanded with HKDF into one key per use, so the AES key of TOTP secrets and the HMAC
pepper of codes are unrelated even though they share a root.

A ciphertext is ``key_id (8 bytes) || nonce (12 bytes) || AES-256-GCM(secret, aad=f"totp:{user_id}")``: the
key id picks the right key after a rotation, and the associated data binds the ciphertext to its user, so a
row copied onto another account does not decrypt (``InvalidTag``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["DecryptionError", "SecretBox"]

_KEY_ID_BYTES = 8
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A stored secret does not decrypt with any configured key (wrong key, wrong user, or tampered)."""


def _derive(root: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)


class SecretBox:
    """AES-GCM for TOTP secrets and HMAC-SHA-256 for codes, over the configured data keys (newest first)."""

    def __init__(self, data_keys: Sequence[bytes]) -> None:
        if not data_keys:
            raise ValueError("at least one data key is required")
        self._aes: dict[bytes, AESGCM] = {}
        self._pepper: dict[str, bytes] = {}
        self._order: list[bytes] = []
        for root in data_keys:
            key_id = _derive(root, b"signalos key id v1")[:_KEY_ID_BYTES]
            self._order.append(key_id)
            self._aes[key_id] = AESGCM(_derive(root, b"signalos totp secret v1"))
            self._pepper[key_id.hex()] = _derive(root, b"signalos otp pepper v1")

    @property
    def current_key_id(self) -> str:
        """Hex id of the newest key (what new ciphertexts and code hashes use)."""
        return self._order[0].hex()

    @staticmethod
    def _aad(user_id: UUID) -> bytes:
        return f"totp:{user_id}".encode()

    def encrypt(self, user_id: UUID, secret: str) -> bytes:
        """Encrypt a base32 TOTP secret for ``user_id`` under the newest key."""
        key_id = self._order[0]
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return key_id + nonce + self._aes[key_id].encrypt(nonce, secret.encode(), self._aad(user_id))

    def decrypt(self, user_id: UUID, blob: bytes) -> str:
        """Decrypt what :meth:`encrypt` produced for the same user; :class:`DecryptionError` otherwise."""
        key_id, nonce, body = blob[:_KEY_ID_BYTES], blob[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES], blob[20:]
        aes = self._aes.get(key_id)
        if aes is None:
            raise DecryptionError("the key that encrypted this secret is not configured")
        try:
            return aes.decrypt(nonce, body, self._aad(user_id)).decode()
        except InvalidTag:
            raise DecryptionError("secret does not decrypt for this user (tampered or moved)") from None

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is already encrypted under the newest key."""
        return blob[:_KEY_ID_BYTES] == self._order[0]

    def code_mac(self, key_id: str, *parts: str) -> str:
        """HMAC-SHA-256 (hex) of ``parts`` under the pepper of ``key_id``; ``""`` when that key is gone."""
        pepper = self._pepper.get(key_id)
        if pepper is None:
            return ""
        return hmac.new(pepper, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()
