"""Chain verification: find every edited, deleted, inserted or reordered record and say where.

Records are checked in the order they are given (append order for a store, line order for a file). Each
record is first placed by its links (its ``prev_hash`` names its predecessor), not by the sequence number it
claims, so one edited number does not look like a deleted and an inserted record. Then four checks, each
naming the position (0-based, in that order) and the sequence number the stored record carries:

1. content — the recomputed hash differs from the stored one: the record was **edited** after sealing;
2. duplicates — a second record claims a sequence number: it was **inserted** (the one the next record links to
   is kept as the original);
3. order — the positions whose sequence numbers are not part of the longest increasing run were **reordered**;
   sequence numbers missing from the run were **deleted** (at the end only detectable with an anchor);
4. links — a record's ``prev_hash`` differs from the hash of the record before it: that previous record was
   **edited** and re-hashed to hide it.

A chain rewritten from some point on, with every hash recomputed, passes checks 1-4. Catch that with an
anchor (the head hash kept elsewhere: the SQLite store keeps one per chain, the CLI takes ``--expect-head``) or
with an HMAC key held outside the database.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from signalos_core._errors import AuditFormatError, AuditIntegrityError
from signalos_core.audit._chain import ChainHead, compute_hash
from signalos_core.audit._record import GENESIS_HASH, AuditRecord, HashAlgorithm

__all__ = ["TamperKind", "UnreadableRecord", "VerifyIssue", "VerifyReport", "verify", "verify_chains"]


class TamperKind(enum.StrEnum):
    """What verification concluded happened to a record."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    MALFORMED = "malformed"  # the stored data is not even a valid record any more


class UnreadableRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A stored record that could not be decoded (a stand-in so verification can report where it is)."""

    error: str
    sequence: int | None = None
    chain_id: str | None = None
    location: str | None = None  # e.g. "line 7" or "row id 12"


class VerifyIssue(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One problem: ``kind`` of tampering, ``position`` in the verified order, and ``sequence``, the number the
    stored record carries (None when the problem is a missing tail)."""

    kind: TamperKind
    position: int
    sequence: int | None
    detail: str


class VerifyReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Result of verifying one chain; ``ok`` is true exactly when ``issues`` is empty."""

    chain_id: str | None
    ok: bool
    records: int
    head: ChainHead | None
    issues: tuple[VerifyIssue, ...]

    @property
    def index(self) -> int | None:
        """Position of the first problem, or None when the chain is intact."""
        return self.issues[0].position if self.issues else None

    def raise_if_tampered(self) -> None:
        """Raise :class:`AuditIntegrityError` (with every issue attached) unless the chain is intact."""
        if self.ok:
            return
        first = self.issues[0]
        raise AuditIntegrityError(
            f"audit chain {self.chain_id!r}: {len(self.issues)} problem(s); first: {first.kind} record at "
            f"position {first.position} (sequence {first.sequence}): {first.detail}",
            index=first.position,
            reason=str(first.kind),
            chain_id=self.chain_id,
            issues=list(self.issues),
        )


@dataclass(slots=True)
class _Item:
    position: int
    sequence: int
    record: AuditRecord | None  # None: unreadable
    hash_ok: bool


class _Checker:
    def __init__(
        self, chain_id: str | None, key: bytes | None, start_sequence: int, start_prev: str, anchor: ChainHead | None
    ) -> None:
        self.chain_id = chain_id
        self.anchor = anchor
        self.key = key
        self.start_sequence = start_sequence
        self.start_prev = start_prev
        self.issues: list[VerifyIssue] = []
        self.items: list[_Item] = []
        self.by_seq: dict[int, _Item] = {}

    def add(self, kind: TamperKind, position: int, sequence: int | None, detail: str) -> None:
        self.issues.append(VerifyIssue(kind=kind, position=position, sequence=sequence, detail=detail))

    def read(self, records: list[AuditRecord | UnreadableRecord]) -> None:
        for position, record in enumerate(records):
            if isinstance(record, UnreadableRecord):
                where = f" ({record.location})" if record.location else ""
                self.add(TamperKind.MALFORMED, position, record.sequence, f"unreadable record{where}: {record.error}")
                if record.sequence is not None:
                    self.items.append(_Item(position, record.sequence, None, False))
                continue
            if record.chain_id != self.chain_id:
                self.add(TamperKind.INSERTED, position, record.sequence, f"record of chain {record.chain_id!r}")
                continue
            hash_ok = self._check_content(position, record)
            self.items.append(_Item(position, record.sequence, record, hash_ok))
        self._infer_edited_sequences()

    def _infer_edited_sequences(self) -> None:
        """Place records by their links, not by the ``sequence`` they claim.

        An edited record's own number is untrustworthy; a record renumbered *and* re-hashed gives itself away
        because its ``prev_hash`` still names its real predecessor.
        """
        by_hash = {i.record.hash: i for i in self.items if i.record is not None and i.hash_ok}
        by_prev = {i.record.prev_hash: i for i in self.items if i.record is not None and i.hash_ok}
        for item in self.items:
            if item.record is None:
                continue
            before = by_hash.get(item.record.prev_hash)
            implied: int | None = None
            if before is not None and before is not item:
                implied = before.sequence + 1
            elif item.record.prev_hash == self.start_prev:
                implied = self.start_sequence
            elif not item.hash_ok and (after := by_prev.get(item.record.hash)) is not None:
                implied = after.sequence - 1
            if implied is None or implied == item.sequence:
                continue
            if item.hash_ok:
                detail = f"renumbered from {implied} to {item.sequence} and re-hashed (its link says {implied})"
                self.add(TamperKind.EDITED, item.position, item.sequence, detail)
                item.hash_ok = False
            item.sequence = implied

    def _check_content(self, position: int, record: AuditRecord) -> bool:
        if self.key is not None and record.hash_alg != HashAlgorithm.HMAC_SHA256:
            detail = f"hash algorithm is {record.hash_alg!r} in a keyed chain (downgraded)"
            self.add(TamperKind.EDITED, position, record.sequence, detail)
            return False
        try:
            expected = compute_hash(record, self.key)
        except AuditFormatError as exc:
            self.add(TamperKind.EDITED, position, record.sequence, f"content no longer encodes: {exc}")
            return False
        if expected != record.hash:
            self.add(TamperKind.EDITED, position, record.sequence, "stored hash does not match the content")
            return False
        return True

    def pick_originals(self) -> None:
        groups: dict[int, list[_Item]] = {}
        for item in self.items:
            groups.setdefault(item.sequence, []).append(item)
        linked = {item.record.prev_hash for item in self.items if item.record is not None}
        if self.anchor is not None:
            linked.add(self.anchor.hash)
        for sequence, group in groups.items():
            keep = next((i for i in group if i.record is not None and i.record.hash in linked), None)
            keep = keep or next((i for i in group if i.hash_ok), group[0])
            self.by_seq[sequence] = keep
            for item in group:
                if item is not keep:
                    detail = f"second record with sequence {sequence} (the other is at position {keep.position})"
                    self.add(TamperKind.INSERTED, item.position, sequence, detail)

    def check_order(self) -> None:
        ordered = sorted(self.by_seq.values(), key=lambda item: item.position)
        in_run = _longest_increasing(
            [item.sequence for item in ordered],
        )
        for index, item in enumerate(ordered):
            if index not in in_run:
                self.add(
                    TamperKind.REORDERED, item.position, item.sequence, f"sequence {item.sequence} is out of place"
                )

    def check_gaps(self, anchor: ChainHead | None, total: int) -> None:
        expected = self.start_sequence
        for sequence in sorted(self.by_seq):
            item = self.by_seq[sequence]
            if sequence < self.start_sequence:
                self.add(TamperKind.INSERTED, item.position, sequence, f"sequence before the start {expected}")
                continue
            if sequence > expected:
                self.add(TamperKind.DELETED, item.position, sequence, _missing(expected, sequence - 1, "before it"))
            expected = sequence + 1
        if anchor is not None and anchor.sequence >= expected:
            self.add(TamperKind.DELETED, total, None, _missing(expected, anchor.sequence, "at the end (anchored head)"))

    def check_links(self) -> None:
        for sequence, item in sorted(self.by_seq.items()):
            if item.record is None or not item.hash_ok or sequence < self.start_sequence:
                continue
            if sequence == self.start_sequence:
                if item.record.prev_hash != self.start_prev:
                    detail = "first record does not link to the chain start (genesis)"
                    self.add(TamperKind.EDITED, item.position, sequence, detail)
                continue
            previous = self.by_seq.get(sequence - 1)
            if previous is None or previous.record is None or not previous.hash_ok:
                continue  # already reported as deleted / edited / malformed
            if item.record.prev_hash != previous.record.hash:
                detail = f"re-hashed after an edit: record {sequence} commits to a different hash"
                self.add(TamperKind.EDITED, previous.position, previous.sequence, detail)

    def check_anchor(self, anchor: ChainHead) -> None:
        for sequence, item in self.by_seq.items():
            if sequence > anchor.sequence:
                self.add(TamperKind.INSERTED, item.position, sequence, f"beyond the anchored head {anchor.sequence}")
        head = self.by_seq.get(anchor.sequence)
        if head is not None and head.record is not None and head.hash_ok and head.record.hash != anchor.hash:
            self.add(TamperKind.EDITED, head.position, anchor.sequence, "hash differs from the anchored head")

    def head(self) -> ChainHead | None:
        readable = [item for item in self.by_seq.values() if item.record is not None]
        if not readable or self.chain_id is None:
            return None
        last = max(readable, key=lambda item: item.sequence)
        assert last.record is not None  # noqa: S101 - filtered just above; narrows the type for mypy
        return ChainHead(chain_id=self.chain_id, sequence=last.sequence, hash=last.record.hash)


def _missing(first: int, last: int, where: str) -> str:
    span = f"sequence {first}" if first == last else f"sequences {first}..{last}"
    return f"{span} missing {where}"


def _longest_increasing(values: list[int]) -> set[int]:
    """Indices of one longest strictly increasing subsequence (patience sorting, O(n log n))."""
    tails: list[int] = []  # tails[k]: value ending the best run of length k+1
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(values)
    for index, value in enumerate(values):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(index)
        else:
            tails[k] = value
            tail_index[k] = index
        parent[index] = tail_index[k - 1] if k > 0 else -1
    chosen: set[int] = set()
    cursor = tail_index[-1] if tail_index else -1
    while cursor != -1:
        chosen.add(cursor)
        cursor = parent[cursor]
    return chosen


def verify(
    records: Iterable[AuditRecord | UnreadableRecord],
    *,
    key: bytes | None = None,
    anchor: ChainHead | None = None,
    chain_id: str | None = None,
    start_sequence: int = 0,
    start_prev_hash: str = GENESIS_HASH,
) -> VerifyReport:
    """Verify one chain given in stored order and report every problem with its position.

    ``chain_id`` defaults to the first readable record's chain. ``key`` is required for an HMAC-keyed chain
    (and, when given, every record must be keyed). ``anchor`` is the head you expect (kept outside the
    database): records missing at the end, appended after it or re-hashed up to it are then detected.
    ``start_sequence``/``start_prev_hash`` verify a segment that does not begin at the genesis record.
    Raises AuditFormatError when a keyed chain is verified without a key (that is a usage error, not tampering).
    """
    items = list(records)
    readable = [record for record in items if isinstance(record, AuditRecord)]
    if chain_id is None:
        chain_id = readable[0].chain_id if readable else (anchor.chain_id if anchor else None)
    if key is None and any(record.hash_alg == HashAlgorithm.HMAC_SHA256 for record in readable):
        raise AuditFormatError("the chain is HMAC-keyed: pass its key to verify it", field="key")
    checker = _Checker(chain_id, key, start_sequence, start_prev_hash, anchor)
    checker.read(items)
    checker.pick_originals()
    checker.check_order()
    checker.check_gaps(anchor, len(items))
    checker.check_links()
    if anchor is not None:
        checker.check_anchor(anchor)
    issues = sorted(checker.issues, key=lambda issue: (issue.position, str(issue.kind)))
    return VerifyReport(chain_id=chain_id, ok=not issues, records=len(items), head=checker.head(), issues=tuple(issues))


def verify_chains(
    records: Iterable[AuditRecord | UnreadableRecord],
    *,
    key: bytes | None = None,
    anchors: dict[str, ChainHead] | None = None,
) -> list[VerifyReport]:
    """Split interleaved records by chain (keeping their order) and verify each; unreadable records go with
    the chain they name, or with the chain of the record before them."""
    groups: dict[str, list[AuditRecord | UnreadableRecord]] = {}
    current: str | None = None
    pending: list[AuditRecord | UnreadableRecord] = []
    for record in records:
        chain = record.chain_id
        if chain is None:
            if current is None:
                pending.append(record)
                continue
            chain = current
        current = chain
        group = groups.setdefault(chain, [])
        group.extend(pending)
        pending.clear()
        group.append(record)
    if pending:  # nothing readable at all: one anonymous chain of unreadable records
        return [verify(pending, key=key)]
    anchors = anchors or {}
    return [verify(group, key=key, anchor=anchors.get(chain), chain_id=chain) for chain, group in groups.items()]
