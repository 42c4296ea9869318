"""Workflow YAML: the shipped default, validation of every issue, firm steps."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from signalos_core.onboarding import (
    FirmStep,
    WorkflowError,
    default_workflow,
    extend_workflow,
    load_workflow,
    parse_workflow,
    validate_firm_step,
)

MINIMAL: dict[str, Any] = {
    "id": "mini",
    "version": 1,
    "title": "Mini",
    "steps": [
        {"id": "a", "title": "A", "form": {"type": "object"}},
        {"id": "end", "title": "End", "final": True, "form": {"type": "object"}},
    ],
}


def test_default_flow_order_and_shape() -> None:
    workflow = default_workflow()
    assert workflow.step_ids == (
        "profile",
        "verify_email",
        "enable_2fa",
        "signal_source",
        "broker",
        "compliance",
        "risk_settings",
        "paper_test_trade",
        "done",
    )
    two_factor = workflow.step("enable_2fa")
    assert two_factor is not None
    assert not two_factor.is_required(firm_requires_2fa=False)
    assert two_factor.is_required(firm_requires_2fa=True)
    broker = workflow.step("broker")
    assert broker is not None
    assert broker.action == "connection_test"
    assert broker.secret_fields() == {"password", "api_key"}
    assert workflow.step("nope") is None
    assert all(step.form["type"] == "object" for step in workflow.steps)


def test_minimal_document_parses() -> None:
    workflow = parse_workflow(MINIMAL)
    assert workflow.step_ids == ("a", "end")
    assert workflow.steps[0].required is True


def test_yaml_syntax_error_has_position() -> None:
    with pytest.raises(WorkflowError, match="line 2"):
        load_workflow("id: x\n  bad: [indent\n")


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["steps"].append(copy.deepcopy(d["steps"][0])), "final step must be the last"),
        (lambda d: d["steps"][0].update(depends_on=["end"]), "is not an earlier step"),
        (lambda d: d["steps"][0].update(depends_on=["zzz"]), "is not an earlier step"),
        (lambda d: d["steps"][1].update(final=False), "exactly one step must be final"),
        (lambda d: d["steps"][0].update(form={"type": "array"}), "type object"),
        (lambda d: d["steps"][0].update(form={"type": 12}), "not a valid JSON Schema"),
        (lambda d: d["steps"][0].update(colour="red"), "Additional properties"),
        (lambda d: d["steps"][0].update(id="Bad-Id"), "does not match"),
        (lambda d: d["steps"][1].update(check="email_verified"), "cannot have a check"),
        (lambda d: d["steps"][0].update(suggest=[{"field": "x", "from": "later.y"}]), "earlier step"),
        (lambda d: d["steps"][0].update(suggest=[{"field": "x", "value": 1, "multiply": "2"}]), "multiply needs"),
        (lambda d: d["steps"][0].update(suggest=[{"field": "x", "from": "y", "quantum": "0"}]), "quantum must be"),
        (lambda d: d["steps"][0].update(constraints=[{"field": "x", "max": "later.y"}]), "earlier step"),
        (lambda d: d["steps"][0].update(invalidated_by=["end"]), "invalidated_by"),
        (lambda d: d.pop("version"), "'version' is a required property"),
    ],
)
def test_invalid_workflows_name_the_problem(mutate: Any, fragment: str) -> None:
    document = copy.deepcopy(MINIMAL)
    mutate(document)
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(document)
    assert any(fragment in issue for issue in caught.value.issues), caught.value.issues


def test_duplicate_ids_and_all_issues_reported() -> None:
    document = copy.deepcopy(MINIMAL)
    document["steps"].insert(1, copy.deepcopy(document["steps"][0]))
    document["steps"][0]["depends_on"] = ["ghost"]
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(document)
    assert len(caught.value.issues) >= 2
    assert any("duplicate" in issue for issue in caught.value.issues)


def test_default_yaml_round_trips_through_the_loader() -> None:
    from importlib import resources

    text = resources.files("signalos_core.onboarding").joinpath("_data/default_workflow.yaml").read_text("utf-8")
    assert load_workflow(text) == default_workflow()
    assert yaml.safe_load(text)["id"] == "default"


def test_firm_steps_are_required_and_before_done() -> None:
    base = default_workflow()
    kyc = FirmStep(
        id="firm_kyc",
        title="Upload your ID",
        form={"type": "object", "required": ["document_number"], "properties": {"document_number": {"type": "string"}}},
        depends_on=("profile",),
    )
    rules = FirmStep(id="firm_rules", title="Accept our rules", form={"type": "object"}, depends_on=("firm_kyc",))
    validate_firm_step(base, [], kyc)
    validate_firm_step(base, [kyc], rules)
    workflow = extend_workflow(base, [kyc, rules])
    assert workflow.step_ids[-3:] == ("firm_kyc", "firm_rules", "done")
    step = workflow.step("firm_kyc")
    assert step is not None
    assert step.origin == "firm"
    assert step.required
    assert extend_workflow(base, []) is base


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        (FirmStep(id="profile", title="Dup", form={"type": "object"}), "duplicate"),
        (FirmStep(id="firm_x", title="X", form={"type": "object"}, depends_on=("done",)), "earlier step"),
        (FirmStep(id="firm_x", title="X", form={"type": "string"}), "type object"),
        (FirmStep(id="Firm X", title="X", form={"type": "object"}), "does not match"),
        (FirmStep(id="firm_x", title="", form={"type": "object"}), "should be non-empty"),
    ],
)
def test_invalid_firm_steps(step: FirmStep, fragment: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        validate_firm_step(default_workflow(), [], step)
    assert any(fragment in issue for issue in caught.value.issues), caught.value.issues


def test_firm_step_id_taken_by_another_firm_step() -> None:
    step = FirmStep(id="firm_x", title="X", form={"type": "object"})
    with pytest.raises(WorkflowError) as caught:
        validate_firm_step(default_workflow(), [step], step)
    assert any("already exists" in issue for issue in caught.value.issues)


@pytest.mark.parametrize(
    ("form", "fragment"),
    [
        ({"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}}, "nested quantifiers"),
        ({"type": "object", "properties": {"x": {"type": "string", "pattern": "(\\d*){2,}"}}}, "nested quantifiers"),
        ({"type": "object", "patternProperties": {"^(x|y+)*$": {}}}, "nested quantifiers"),
        ({"type": "object", "properties": {"x": {"type": "string", "pattern": "((a+))+"}}}, "nested quantifiers"),
        ({"type": "object", "properties": {"x": {"type": "string", "pattern": "a" * 201}}}, "longer than"),
        ({"type": "object", "properties": {"x": {"type": "string", "pattern": "(unclosed"}}}, "not a valid regular"),
        ({"type": "object", "description": "x" * 20_000}, "larger than"),
    ],
)
def test_firm_forms_cannot_hang_the_server(form: dict[str, Any], fragment: str) -> None:
    step = FirmStep(id="firm_x", title="X", form=form)
    with pytest.raises(WorkflowError) as caught:
        validate_firm_step(default_workflow(), [], step)
    assert any(fragment in issue for issue in caught.value.issues), caught.value.issues


def test_safe_firm_patterns_are_accepted() -> None:
    form = {
        "type": "object",
        "properties": {
            "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"},
            "ref": {"type": "string", "pattern": "^(ab|cd)[0-9]+$"},
            "esc": {"type": "string", "pattern": "^(\\+[0-9]|[(+])+$"},
        },
        "allOf": [{"properties": {"y": {"type": "string", "pattern": "^x?$"}}}],
    }
    validate_firm_step(default_workflow(), [], FirmStep(id="firm_bank", title="Bank", form=form))
