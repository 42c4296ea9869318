"""Publisher signing keys and the keyring (trust store) that install trusts.

A key id is derived from the public key itself (``ed25519:`` + the first 16 bytes of its SHA-256, hex), so a
signature names exactly one key and a key cannot be re-labelled. Each key is bound to one publisher: a package
signed by a key of publisher ``acme`` can only carry plugin ids in the ``acme.`` namespace. Revocation is
permanent and checked at every verification (and again when an installed plugin is activated).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signalos_core._errors import PackageVerificationError, PluginError

__all__ = ["Keyring", "PublisherKey", "SigningKey", "key_id_for"]


def key_id_for(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"{what} is not valid base64") from exc


@attrs.frozen
class SigningKey:
    """A publisher's private Ed25519 signing key (kept by the author, never shipped)."""

    publisher: str
    private_key: Ed25519PrivateKey = attrs.field(repr=False)

    @classmethod
    def generate(cls, publisher: str) -> SigningKey:
        """Create a new random key for ``publisher``."""
        return cls(publisher, Ed25519PrivateKey.generate())

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """The key id (see :func:`key_id_for`)."""
        return key_id_for(self.public_bytes)

    def public(self) -> PublisherKey:
        """The matching public key, to hand to a marketplace or keyring."""
        return PublisherKey(publisher=self.publisher, public_key=self.public_bytes)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature of ``data``."""
        return self.private_key.sign(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key as JSON, readable by the owner only (mode 0600)."""
        raw = self.private_key.private_bytes_raw()
        body = {"publisher": self.publisher, "key_id": self.key_id, "private_key": _b64(raw)}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(body, handle, indent=2)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Read a key written by :meth:`save`."""
        try:
            body = json.loads(Path(path).read_text("utf-8"))
            raw = _unb64(body["private_key"], "private_key")
            key = cls(str(body["publisher"]), Ed25519PrivateKey.from_private_bytes(raw))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PluginError(f"cannot read signing key {path}: {exc}") from exc
        return key


@attrs.frozen
class PublisherKey:
    """A trusted public key bound to a publisher, possibly revoked."""

    publisher: str
    public_key: bytes = attrs.field(repr=False)
    revoked_at: dt.datetime | None = None
    revoked_reason: str = ""

    @property
    def key_id(self) -> str:
        """The key id (see :func:`key_id_for`)."""
        return key_id_for(self.public_key)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``data``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form (the public key in base64)."""
        return {
            "publisher": self.publisher,
            "key_id": self.key_id,
            "public_key": _b64(self.public_key),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
        }


class Keyring:
    """Trusted publisher keys and their revocations (in memory; :meth:`save`/:meth:`load` as JSON).

    A marketplace builds one from its publisher table; an author's machine keeps a JSON file.
    """

    def __init__(self, keys: list[PublisherKey] | None = None) -> None:
        self._keys: dict[str, PublisherKey] = {}
        for key in keys or []:
            self.add(key)

    def __iter__(self) -> Iterator[PublisherKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: PublisherKey) -> None:
        """Trust ``key`` for its publisher. A key id already bound to another publisher is refused."""
        existing = self._keys.get(key.key_id)
        if existing is not None and existing.publisher != key.publisher:
            raise PluginError(f"key {key.key_id} is already bound to publisher {existing.publisher!r}")
        if existing is not None and existing.revoked_at is not None:
            return  # revocation is permanent: re-adding a revoked key does not un-revoke it
        self._keys[key.key_id] = key

    def revoke(self, key_id: str, reason: str, *, at: dt.datetime | None = None) -> None:
        """Revoke a key for good; packages signed by it no longer verify or activate."""
        key = self._keys.get(key_id)
        if key is None:
            raise PluginError(f"unknown key {key_id}")
        when = at or dt.datetime.now(dt.UTC)
        self._keys[key_id] = attrs.evolve(key, revoked_at=when, revoked_reason=reason)

    def get(self, key_id: str) -> PublisherKey | None:
        """The key with that id, revoked or not."""
        return self._keys.get(key_id)

    def require(self, key_id: str, publisher: str, *, plugin_id: str | None = None) -> PublisherKey:
        """The usable key ``key_id`` of ``publisher``; raises :class:`PackageVerificationError` otherwise.

        Reasons: ``unknown_key``, ``publisher_mismatch``, ``revoked_key``.
        """
        key = self._keys.get(key_id)
        if key is None:
            raise PackageVerificationError(
                f"signing key {key_id} is not trusted", reason="unknown_key", plugin_id=plugin_id
            )
        if key.publisher != publisher:
            raise PackageVerificationError(
                f"key {key_id} belongs to publisher {key.publisher!r}, not {publisher!r}",
                reason="publisher_mismatch",
                plugin_id=plugin_id,
            )
        if key.revoked_at is not None:
            raise PackageVerificationError(
                f"key {key_id} of {publisher!r} was revoked on {key.revoked_at.date()}: {key.revoked_reason}",
                reason="revoked_key",
                plugin_id=plugin_id,
            )
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the keyring as JSON."""
        body = {"keys": [key.to_dict() for key in self._keys.values()]}
        Path(path).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", "utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a keyring written by :meth:`save` (a missing file is an error, never an empty keyring)."""
        try:
            body = json.loads(Path(path).read_text("utf-8"))
            keys = []
            for entry in body["keys"]:
                revoked = entry.get("revoked_at")
                public = _unb64(entry["public_key"], "public_key")
                key = PublisherKey(
                    publisher=str(entry["publisher"]),
                    public_key=public,
                    revoked_at=dt.datetime.fromisoformat(revoked) if revoked else None,
                    revoked_reason=str(entry.get("revoked_reason") or ""),
                )
                if entry.get("key_id") not in (None, key.key_id):
                    raise ValueError(f"key_id {entry.get('key_id')} does not match its public key")
                keys.append(key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PluginError(f"cannot read keyring {path}: {exc}") from exc
        return cls(keys)
