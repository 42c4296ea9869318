"""Replay logged inputs through another evaluator (e.g. a new profile version) and diff the decisions.

The audit package does not know the engine: the caller passes ``evaluate(input) -> outcome`` where ``input``
is the logged canonical input tree (``{"state": ..., "order": ...}``) and ``outcome`` is a mapping (or a
msgspec Struct) with an ``outcome`` string and a ``rules`` list of objects with ``rule_id`` — the same shape
the records store. Values are compared canonically, so ``Decimal("5.00")`` equals ``"5"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from signalos_core._errors import AuditFormatError
from signalos_core.audit._canonical import canonical_tree, sha256_hex
from signalos_core.audit._record import AuditRecord, RecordKind
from signalos_core.audit._verify import UnreadableRecord

__all__ = ["DecisionDiff", "Evaluate", "ReplayIssue", "ReplayReport", "RuleChange", "replay"]

#: The caller's evaluator: logged input in, ``{"outcome": ..., "rules": [...]}`` out.
Evaluate = Callable[[Any], Any]

_DEFAULT_KINDS = frozenset({RecordKind.DECISION.value, RecordKind.ENFORCEMENT.value})


class RuleChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One field of one rule result that differs (``before``/``after`` are canonical JSON values)."""

    rule_id: str
    field: str
    before: Any
    after: Any


class DecisionDiff(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How the replayed decision for one record differs from the logged one."""

    chain_id: str
    sequence: int
    account_id: str | None
    recorded_at: datetime
    kind: str
    outcome_before: str | None
    outcome_after: str | None
    rules_added: tuple[str, ...]
    rules_removed: tuple[str, ...]
    rules_changed: tuple[RuleChange, ...]


class ReplayIssue(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A record that could not be replayed: unreadable, tampered input, or the evaluator raised."""

    chain_id: str | None
    sequence: int | None
    error: str


class ReplayReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Totals and the per-record differences of one replay."""

    considered: int  # records of the replayed kinds
    replayed: int
    unchanged: int
    skipped: int  # logged without their input (digest only)
    changed: tuple[DecisionDiff, ...]
    errors: tuple[ReplayIssue, ...]


def _keyed_rules(rules: Any, path: str) -> dict[str, dict[str, Any]]:
    """Rule results keyed by rule id (a repeated id gets ``#2``, ``#3``... in order)."""
    if not isinstance(rules, list | tuple):
        raise AuditFormatError(f"{path}: rules must be a list", field=path)
    keyed: dict[str, dict[str, Any]] = {}
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict) or not isinstance(rule.get("rule_id"), str):
            raise AuditFormatError(f"{path}[{index}]: must be an object with a string rule_id", field=path)
        key, count = rule["rule_id"], 1
        while key in keyed:
            count += 1
            key = f"{rule['rule_id']}#{count}"
        keyed[key] = rule
    return keyed


def _diff(record: AuditRecord, outcome: Any, ignore: frozenset[str]) -> DecisionDiff | None:
    tree = canonical_tree(outcome, "outcome")
    if not isinstance(tree, dict):
        raise AuditFormatError("evaluate() must return an object with 'outcome' and 'rules'", field="outcome")
    after_outcome = tree.get("outcome")
    before = _keyed_rules(list(record.rules), "record.rules")
    after = _keyed_rules(tree.get("rules", []), "outcome.rules")
    changes = []
    for rule_key in before.keys() & after.keys():
        old, new = before[rule_key], after[rule_key]
        for field in sorted((old.keys() | new.keys()) - ignore - {"rule_id"}):
            if old.get(field) != new.get(field):
                changes.append(RuleChange(rule_id=rule_key, field=field, before=old.get(field), after=new.get(field)))
    added = tuple(key for key in after if key not in before)
    removed = tuple(key for key in before if key not in after)
    if after_outcome == record.outcome and not added and not removed and not changes:
        return None
    return DecisionDiff(
        chain_id=record.chain_id,
        sequence=record.sequence,
        account_id=record.account_id,
        recorded_at=record.recorded_at,
        kind=record.kind,
        outcome_before=record.outcome,
        outcome_after=after_outcome if isinstance(after_outcome, str) or after_outcome is None else str(after_outcome),
        rules_added=added,
        rules_removed=removed,
        rules_changed=tuple(sorted(changes, key=lambda change: (change.rule_id, change.field))),
    )


def replay(
    records: Iterable[AuditRecord | UnreadableRecord],
    evaluate: Evaluate,
    *,
    kinds: Iterable[str] = _DEFAULT_KINDS,
    ignore_fields: Iterable[str] = ("message",),
) -> ReplayReport:
    """Re-evaluate every logged input of the given ``kinds`` and report the decisions that would change.

    Each input is checked against its ``input_digest`` first (a tampered input is reported, never replayed),
    and unreadable records (as a store's ``scan`` yields them) are reported too.
    Exceptions raised by ``evaluate`` are reported per record, not propagated. ``ignore_fields`` are rule
    fields not compared (by default the human ``message``, whose wording may change between versions).
    """
    wanted = frozenset(str(kind) for kind in kinds)
    ignore = frozenset(ignore_fields)
    considered = replayed = unchanged = skipped = 0
    changed: list[DecisionDiff] = []
    errors: list[ReplayIssue] = []
    for record in records:
        if isinstance(record, UnreadableRecord):
            errors.append(ReplayIssue(chain_id=record.chain_id, sequence=record.sequence, error=record.error))
            continue
        if record.kind not in wanted:
            continue
        considered += 1
        if record.input is None:
            skipped += 1
            continue
        try:
            if sha256_hex(record.input, "input") != record.input_digest:
                raise AuditFormatError("input does not match its digest (tampered)", field="input")
            diff = _diff(record, evaluate(record.input), ignore)
        except Exception as exc:  # a failing record is reported and the replay goes on
            errors.append(
                ReplayIssue(chain_id=record.chain_id, sequence=record.sequence, error=f"{type(exc).__name__}: {exc}")
            )
            continue
        replayed += 1
        if diff is None:
            unchanged += 1
        else:
            changed.append(diff)
    return ReplayReport(
        considered=considered,
        replayed=replayed,
        unchanged=unchanged,
        skipped=skipped,
        changed=tuple(changed),
        errors=tuple(errors),
    )
