"""Replaying logged inputs through another evaluator and diffing the decisions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from signalos_core.audit import AuditEntry, AuditRecord, MemoryAuditStore, RuleChange, UnreadableRecord, replay
from tests.core.audit.conftest import StepClock

FLOOR_V1 = Decimal("95000")


def evaluate_with_floor(floor: Decimal) -> Any:
    """A stand-in for engine.check with a profile whose only rule is an equity floor (strict '<')."""

    def evaluate(logged: dict[str, Any]) -> dict[str, Any]:
        equity = Decimal(logged["state"]["equity"])
        denied = equity < floor
        return {
            "outcome": "denied" if denied else "allowed",
            "rules": [
                {
                    "rule_id": "max_loss",
                    "outcome": "deny" if denied else "pass",
                    "value": equity,
                    "threshold": floor,
                    "message": f"equity {equity} vs floor {floor}",
                }
            ],
        }

    return evaluate


def logged(equities: list[str], **extra: Any) -> list[AuditRecord]:
    store = MemoryAuditStore(clock=StepClock())
    evaluate = evaluate_with_floor(FLOOR_V1)
    out = []
    for equity in equities:
        inp = {"state": {"equity": Decimal(equity)}, "order": {"size": Decimal(1)}}
        decision = evaluate(msgspec.to_builtins(inp, builtin_types=(Decimal,)))
        out.append(store.append(AuditEntry(kind="decision", chain_id="a", input=inp, **decision, **extra)))
    return out


def test_same_version_changes_nothing() -> None:
    report = replay(logged(["94000", "95000", "96000.50"]), evaluate_with_floor(FLOOR_V1))
    assert (report.considered, report.replayed, report.unchanged, report.changed, report.errors) == (3, 3, 3, (), ())


def test_new_floor_changes_exactly_the_affected_decisions() -> None:
    records = logged(["94000", "95000", "95500", "97000"])
    report = replay(records, evaluate_with_floor(Decimal("96000")))
    assert (report.replayed, report.unchanged) == (4, 0)  # every rule result now shows the new threshold
    first, second, _, last = report.changed
    assert (first.outcome_before, first.outcome_after) == ("denied", "denied")
    assert first.rules_changed == (RuleChange(rule_id="max_loss", field="threshold", before="95000", after="96000"),)
    assert (second.outcome_before, second.outcome_after) == ("allowed", "denied")
    assert {c.field for c in second.rules_changed} == {"outcome", "threshold"}
    assert (second.chain_id, second.sequence, second.kind) == ("a", 1, "decision")
    assert second.recorded_at == records[1].recorded_at
    assert (last.outcome_before, last.outcome_after) == ("allowed", "allowed")

    outcomes_only = replay(records, evaluate_with_floor(Decimal("96000")), ignore_fields=("message", "threshold"))
    assert [d.sequence for d in outcomes_only.changed] == [1, 2]
    assert outcomes_only.unchanged == 2


def test_added_and_removed_rules_and_repeated_ids() -> None:
    records = logged(["94000"])

    def evaluate(_: Any) -> dict[str, Any]:
        return {"outcome": "denied", "rules": [{"rule_id": "news"}, {"rule_id": "news"}]}

    diff = replay(records, evaluate).changed[0]
    assert diff.rules_added == ("news", "news#2")
    assert diff.rules_removed == ("max_loss",)


def test_struct_outcomes_are_accepted() -> None:
    class Rule(msgspec.Struct):
        rule_id: str
        outcome: str
        value: Decimal
        threshold: Decimal

    class Decision(msgspec.Struct):
        outcome: str
        rules: list[Rule]

    def evaluate(logged_input: Any) -> Decision:
        equity = Decimal(logged_input["state"]["equity"])
        return Decision(outcome="denied", rules=[Rule("max_loss", "deny", equity, FLOOR_V1)])

    report = replay(logged(["94000.00"]), evaluate, ignore_fields=("message",))
    assert report.unchanged == 1


def test_skips_errors_and_kinds() -> None:
    store = MemoryAuditStore(clock=StepClock())
    store.append(AuditEntry(kind="decision", chain_id="a", input_digest="0" * 64, outcome="allowed"))
    store.append(AuditEntry(kind="mode_change", chain_id="a", actor="admin", reason="switch"))
    good = store.append(AuditEntry(kind="enforcement", chain_id="a", input={"state": {"equity": "1"}}))
    tampered = msgspec.structs.replace(good, input={"state": {"equity": "2"}}, sequence=3)
    records = [r for r in store.scan("a") if isinstance(r, AuditRecord)] + [tampered]

    def explode(_: Any) -> Any:
        raise KeyError("order")

    report = replay(records, explode)
    assert (report.considered, report.skipped, report.replayed) == (3, 1, 0)
    assert [(e.sequence, e.error.split(":")[0]) for e in report.errors] == [(2, "KeyError"), (3, "AuditFormatError")]
    assert "digest" in report.errors[1].error

    unreadable = UnreadableRecord(error="bad row", sequence=7, chain_id="a")
    assert replay([unreadable], explode).errors[0].sequence == 7

    report = replay(records[:3], lambda _: ["not", "an", "object"])
    assert "AuditFormatError" in report.errors[0].error
    report = replay(records[:3], lambda _: {"outcome": "x", "rules": "nope"})
    assert "rules must be a list" in report.errors[0].error
    report = replay(records[:3], lambda _: {"outcome": "x", "rules": [{"id": 1}]})
    assert "rule_id" in report.errors[0].error
