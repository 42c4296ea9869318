"""The audit record model: what is appended (``AuditEntry``) and what is stored (``AuditRecord``).

An entry is what a caller knows about one event (a decision, an enforcement, a mode change, a manual
reset...). The store seals it into a record by giving it its place in a chain: the sequence number, the time,
the previous record's hash and its own hash. Both are frozen msgspec Structs; every JSON-ish field is kept as a
*canonical tree* (see ``_canonical``), so a record read back from any store re-encodes to the same bytes.
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import datetime
from typing import Any

import msgspec

from signalos_core._errors import AuditFormatError
from signalos_core.audit._canonical import canonical_tree, encode_lowered

__all__ = [
    "DEFAULT_CHAIN",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditRecord",
    "HashAlgorithm",
    "RecordKind",
]

#: ``prev_hash`` of the first record of every chain: 64 zeros (the chain id is inside each hashed record, so
#: records cannot be moved between chains even though all chains share this genesis value).
GENESIS_HASH = "0" * 64
#: Chain used when an entry names none.
DEFAULT_CHAIN = "global"
#: Version of the record layout; part of every hashed record so a future layout cannot be confused with this one.
FORMAT_VERSION = 1

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class RecordKind(enum.StrEnum):
    """The kinds of record SignalOS writes; other lower-case identifiers are accepted for extensions."""

    DECISION = "decision"  # a pre-trade check
    ENFORCEMENT = "enforcement"  # a monitoring observation (equity update, fill, clock event)
    MODE_CHANGE = "mode_change"  # a compliance mode (profile) assigned to or removed from an account
    MANUAL_RESET = "manual_reset"  # a human lifted a lock or breach
    PROFILE_PUBLISHED = "profile_published"  # a firm published a profile version


class HashAlgorithm(enum.StrEnum):
    """How ``hash`` is computed: plain SHA-256, or HMAC-SHA-256 with a key kept outside the database."""

    SHA256 = "sha256"
    HMAC_SHA256 = "hmac-sha256"


def _check_text(field: str, value: object, *, required: bool = False) -> None:
    if value is None:
        if required:
            raise AuditFormatError(f"{field}: required", field=field)
        return
    if not isinstance(value, str) or not value.strip():
        raise AuditFormatError(f"{field}: must be a non-empty string, got {value!r}", field=field)


class AuditEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One event to append to the audit trail, before the store seals it into an :class:`AuditRecord`.

    ``input`` is the complete input of the decision (``{"state": ..., "order": ...}`` or ``{"state": ...,
    "event": ...}``); it is lowered to a canonical tree and its SHA-256 becomes ``input_digest``. Pass only
    ``input_digest`` to log the digest without the input (then the record cannot be replayed). ``rules`` lists
    every rule that fired as plain JSON objects, each with at least a string ``rule_id`` (usually also
    ``outcome``, ``value``, ``threshold``, ``base``, ``message``). ``recorded_at`` defaults to the store's clock.
    """

    kind: str
    account_id: str | None = None
    chain_id: str = DEFAULT_CHAIN
    profile_id: str | None = None
    profile_version: str | None = None
    profile_hash: str | None = None
    backend: str | None = None
    input: Any = None
    input_digest: str | None = None
    outcome: str | None = None
    rules: tuple[Any, ...] = ()
    actor: str | None = None
    reason: str | None = None
    details: Any = None
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _IDENT.match(self.kind):
            raise AuditFormatError(f"kind: {self.kind!r} is not a lower-case identifier", field="kind")
        _check_text("chain_id", self.chain_id, required=True)
        for name in ("account_id", "profile_id", "profile_version", "profile_hash", "backend", "outcome"):
            _check_text(name, getattr(self, name))
        for name in ("actor", "reason"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise AuditFormatError(f"{name}: must be a string, got {value!r}", field=name)
        if self.kind == RecordKind.MANUAL_RESET and (not self.actor or not self.reason):
            raise AuditFormatError("manual_reset entries need an actor and a reason", field="actor")
        if self.recorded_at is not None:
            canonical_tree(self.recorded_at, "recorded_at")  # refuses naive datetimes early
        msgspec.structs.force_setattr(self, "rules", tuple(_lower_rules(self.rules)))
        if self.details is not None:
            msgspec.structs.force_setattr(self, "details", canonical_tree(self.details, "details"))
        self._seal_input()

    def _seal_input(self) -> None:
        if self.input is None:
            if self.input_digest is not None and not _HEX64.match(self.input_digest):
                raise AuditFormatError("input_digest: must be 64 lower-case hex digits", field="input_digest")
            return
        tree = canonical_tree(self.input, "input")
        digest = hashlib.sha256(encode_lowered(tree)).hexdigest()
        if self.input_digest is not None and self.input_digest != digest:
            raise AuditFormatError("input_digest does not match the input", field="input_digest")
        msgspec.structs.force_setattr(self, "input", tree)
        msgspec.structs.force_setattr(self, "input_digest", digest)


def _lower_rules(rules: Any) -> list[Any]:
    if not isinstance(rules, list | tuple):
        raise AuditFormatError("rules: must be a list of objects", field="rules")
    lowered = []
    for index, rule in enumerate(rules):
        tree = canonical_tree(rule, f"rules[{index}]")
        if not isinstance(tree, dict) or not isinstance(tree.get("rule_id"), str) or not tree["rule_id"]:
            raise AuditFormatError(f"rules[{index}]: must be an object with a string rule_id", field="rules")
        lowered.append(tree)
    return lowered


class AuditRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One sealed, hash-chained audit record (field meanings in docs/audit.md).

    ``hash`` is ``sha256(prev_hash || canonical_json(record without "hash"))`` (HMAC-SHA-256 with a key when
    ``hash_alg`` is ``hmac-sha256``); ``prev_hash`` is the previous record's ``hash`` in the same chain, or
    :data:`GENESIS_HASH` for ``sequence`` 0. Records are built by stores and by decoding exports, not by hand.
    """

    format: int
    chain_id: str
    sequence: int
    recorded_at: datetime
    kind: str
    account_id: str | None
    profile_id: str | None
    profile_version: str | None
    profile_hash: str | None
    backend: str | None
    input_digest: str | None
    input: Any
    outcome: str | None
    rules: tuple[Any, ...]
    actor: str | None
    reason: str | None
    details: Any
    hash_alg: str
    prev_hash: str
    hash: str

    @property
    def rule_ids(self) -> list[str]:
        """The ids of the rules that fired, in recorded order."""
        return [str(rule["rule_id"]) for rule in self.rules if isinstance(rule, dict) and "rule_id" in rule]

    def body(self) -> dict[str, Any]:
        """The hashed content: every field except ``hash``, as a canonical tree."""
        tree: dict[str, Any] = canonical_tree(self.unhashed_fields(), "record")
        return tree

    def unhashed_fields(self) -> dict[str, Any]:
        """Every field except ``hash`` as Python values (not yet canonical)."""
        fields = msgspec.structs.asdict(self)
        del fields["hash"]
        return fields

    def to_json_dict(self) -> dict[str, Any]:
        """Every field including ``hash``, as a canonical tree (the JSON-lines export line)."""
        tree: dict[str, Any] = canonical_tree(msgspec.structs.asdict(self), "record")
        return tree
