"""Hash chaining: sealing entries into records and recomputing record hashes.

``hash = SHA-256(prev_hash_ascii || canonical_json(body))`` where ``prev_hash_ascii`` is the 64 lower-case hex
characters of the previous hash as ASCII bytes and ``body`` is the record without its ``hash`` field (it
includes ``prev_hash`` itself, ``chain_id`` and ``sequence``). With a key the same message goes through
HMAC-SHA-256, so whoever can write the database but does not hold the key cannot forge a consistent chain.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import msgspec

from signalos_core._errors import AuditFormatError
from signalos_core.audit._canonical import canonical_datetime, canonical_json
from signalos_core.audit._record import FORMAT_VERSION, GENESIS_HASH, AuditEntry, AuditRecord, HashAlgorithm

__all__ = ["ChainHead", "compute_hash", "seal"]


class ChainHead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The last record of a chain: its ``sequence`` and ``hash`` (an anchor worth keeping outside the database)."""

    chain_id: str
    sequence: int
    hash: str

    def __str__(self) -> str:
        return f"{self.sequence}:{self.hash}"


def compute_hash(record: AuditRecord, key: bytes | None = None) -> str:
    """Recompute the hash ``record`` should carry; raises AuditFormatError if the record cannot be encoded."""
    try:
        prefix = record.prev_hash.encode("ascii")
    except UnicodeEncodeError as exc:
        raise AuditFormatError("prev_hash: not ASCII", field="prev_hash") from exc
    message = prefix + canonical_json(record.unhashed_fields(), "record")
    if record.hash_alg == HashAlgorithm.HMAC_SHA256:
        if key is None:
            raise AuditFormatError("record is HMAC-keyed; a key is needed to verify it", field="hash_alg")
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    if record.hash_alg == HashAlgorithm.SHA256:
        return hashlib.sha256(message).hexdigest()
    raise AuditFormatError(f"hash_alg: unknown algorithm {record.hash_alg!r}", field="hash_alg")


def seal(
    entry: AuditEntry,
    *,
    sequence: int,
    prev_hash: str,
    recorded_at: datetime,
    key: bytes | None = None,
) -> AuditRecord:
    """Turn ``entry`` into the record at ``sequence`` of its chain, after the record whose hash is ``prev_hash``."""
    if sequence < 0:
        raise AuditFormatError("sequence: must be >= 0", field="sequence")
    if sequence == 0 and prev_hash != GENESIS_HASH:
        raise AuditFormatError("sequence 0 must follow the genesis hash", field="prev_hash")
    # Normalise the time to canonical UTC now so the sealed object equals what any store reads back.
    when = datetime.fromisoformat(canonical_datetime(entry.recorded_at or recorded_at, "recorded_at"))
    draft = AuditRecord(
        format=FORMAT_VERSION,
        chain_id=entry.chain_id,
        sequence=sequence,
        recorded_at=when,
        kind=str(entry.kind),
        account_id=entry.account_id,
        profile_id=entry.profile_id,
        profile_version=entry.profile_version,
        profile_hash=entry.profile_hash,
        backend=entry.backend,
        input_digest=entry.input_digest,
        input=entry.input,
        outcome=entry.outcome,
        rules=entry.rules,
        actor=entry.actor,
        reason=entry.reason,
        details=entry.details,
        hash_alg=HashAlgorithm.HMAC_SHA256.value if key is not None else HashAlgorithm.SHA256.value,
        prev_hash=prev_hash,
        hash="",
    )
    return msgspec.structs.replace(draft, hash=compute_hash(draft, key))
