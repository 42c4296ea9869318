"""Onboarding workflows as data: the step model, the YAML loader and firm-added steps.

A workflow is a YAML document validated against ``_data/workflow.schema.json`` (every issue reported, not just
the first), then checked for meaning: unique step ids, dependencies that exist and come earlier (so the order
in the file is a valid topological order and there can be no cycle), exactly one ``final`` step and it last,
valid JSON Schemas (draft 2020-12) for every form, and suggestions/constraints that only read earlier steps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

import msgspec
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from signalos_core._errors import WorkflowError

__all__ = [
    "Constraint",
    "FirmStep",
    "StepDefinition",
    "Suggestion",
    "Workflow",
    "default_workflow",
    "extend_workflow",
    "load_workflow",
    "parse_workflow",
    "validate_firm_step",
]

Check = Literal["email_verified", "two_factor_enabled"]
Action = Literal["connection_test", "paper_trade"]


class Suggestion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename={"source": "from"}):
    """A default for ``field``: a constant ``value``, or ``from`` an earlier answer (``step.field``).

    With ``multiply`` the source is read as a Decimal and scaled, then rounded down to ``quantum`` and raised to
    ``minimum`` (rounding down so a suggested limit never exceeds what the multiplier allows).
    """

    field: str
    value: Any = None
    source: str | None = None
    multiply: Decimal | None = None
    quantum: Decimal | None = None
    minimum: Decimal | None = None


class Constraint(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``field`` (a decimal string) must be at most ``max`` / at least ``min`` (both inclusive).

    ``max``/``min`` name another field of the same form or ``step.field`` of an earlier step.
    """

    field: str
    max: str | None = None
    min: str | None = None


class StepDefinition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step of a workflow. ``form`` is the JSON Schema of its answers."""

    id: str
    title: str
    form: dict[str, Any]
    description: str = ""
    required: bool = True
    required_when: Literal["firm_requires_2fa"] | None = None
    depends_on: tuple[str, ...] = ()
    check: Check | None = None
    action: Action | None = None
    final: bool = False
    suggest: tuple[Suggestion, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    invalidated_by: tuple[str, ...] = ()
    example: dict[str, Any] | None = None
    origin: Literal["workflow", "firm"] = "workflow"

    def is_required(self, *, firm_requires_2fa: bool) -> bool:
        """Whether the user must complete this step (it cannot be skipped)."""
        if self.required or self.final:
            return True
        return self.required_when == "firm_requires_2fa" and firm_requires_2fa

    def secret_fields(self) -> frozenset[str]:
        """Names of ``writeOnly`` fields anywhere in the form: never stored, never echoed."""
        return frozenset(_write_only(self.form))


class Workflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An ordered list of steps; the order is a topological order of ``depends_on``."""

    id: str
    version: int
    title: str
    steps: tuple[StepDefinition, ...]

    def step(self, step_id: str) -> StepDefinition | None:
        """The step called ``step_id``, or None."""
        for step in self.steps:
            if step.id == step_id:
                return step
        return None

    @property
    def step_ids(self) -> tuple[str, ...]:
        """Step ids in order."""
        return tuple(step.id for step in self.steps)


class FirmStep(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A required step a firm adds for its traders: a form only (no checks, no actions), before ``done``."""

    id: str
    title: str
    form: dict[str, Any]
    description: str = ""
    depends_on: tuple[str, ...] = ()


def _write_only(schema: Any) -> Iterable[str]:
    # Walk the whole schema: secrets may be declared inside allOf/if/then branches.
    if isinstance(schema, Mapping):
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                if isinstance(sub, Mapping) and sub.get("writeOnly") is True:
                    yield str(name)
        for value in schema.values():
            yield from _write_only(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _write_only(item)


@cache
def _meta_schema() -> dict[str, Any]:
    text = resources.files("signalos_core.onboarding").joinpath("_data/workflow.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _meta_validator() -> Draft202012Validator:
    return Draft202012Validator(_meta_schema())


@cache
def _step_validator() -> Draft202012Validator:
    # The same step definition as in a workflow file, validated on its own (a firm's extra step).
    meta = _meta_schema()
    return Draft202012Validator({"$schema": meta["$schema"], "$defs": meta["$defs"], "$ref": "#/$defs/step"})


def _path(error_path: Iterable[Any]) -> str:
    return "/".join(str(part) for part in error_path) or "(root)"


def parse_workflow(document: Any, *, source: str = "<workflow>") -> Workflow:
    """Validate a decoded workflow document and build the :class:`Workflow` (``WorkflowError`` lists all issues)."""
    issues = [
        f"{_path(err.absolute_path)}: {err.message}"
        for err in sorted(_meta_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if issues:
        raise WorkflowError(f"{source}: invalid workflow ({len(issues)} issue(s))", issues=issues)
    workflow = msgspec.convert(document, Workflow)
    check_workflow(workflow, source=source)
    return workflow


def check_workflow(workflow: Workflow, *, source: str = "<workflow>") -> None:
    """Semantic checks (order, dependencies, final step, form schemas, references); raise ``WorkflowError``."""
    issues: list[str] = []
    seen: set[str] = set()
    for index, step in enumerate(workflow.steps):
        where = f"steps/{index} ({step.id})"
        if step.id in seen:
            issues.append(f"{where}: duplicate step id")
        issues.extend(
            f"{where}: depends_on {dep!r} is not an earlier step" for dep in step.depends_on if dep not in seen
        )
        issues.extend(
            f"{where}: invalidated_by {dep!r} is not an earlier step" for dep in step.invalidated_by if dep not in seen
        )
        issues.extend(_check_form(step, where))
        issues.extend(_check_references(step, seen, where))
        if step.final and index != len(workflow.steps) - 1:
            issues.append(f"{where}: the final step must be the last one")
        if step.final and (step.check or step.action):
            issues.append(f"{where}: the final step cannot have a check or an action")
        seen.add(step.id)
    if sum(1 for step in workflow.steps if step.final) != 1:
        issues.append("steps: exactly one step must be final")
    if issues:
        raise WorkflowError(f"{source}: invalid workflow ({len(issues)} issue(s))", issues=issues)


def _check_form(step: StepDefinition, where: str) -> list[str]:
    try:
        Draft202012Validator.check_schema(step.form)
    except SchemaError as exc:
        return [f"{where}/form/{_path(exc.absolute_path)}: not a valid JSON Schema: {exc.message}"]
    if step.form.get("type") != "object":
        return [f"{where}/form: the form must be a JSON Schema of type object"]
    if step.example is not None:
        # Examples are published in the API docs: they must be valid answers themselves.
        validator = Draft202012Validator(step.form, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return [f"{where}/example: {err.message}" for err in validator.iter_errors(step.example)]
    return []


def _check_references(step: StepDefinition, earlier: set[str], where: str) -> list[str]:
    issues: list[str] = []
    refs: list[tuple[str, str]] = [("suggest", s.source) for s in step.suggest if s.source is not None]
    refs += [("constraints", ref) for c in step.constraints for ref in (c.max, c.min) if ref is not None]
    for kind, ref in refs:
        if "." in ref and ref.split(".", 1)[0] not in earlier:
            issues.append(f"{where}/{kind}: {ref!r} does not name an earlier step")
    for suggestion in step.suggest:
        if suggestion.multiply is not None and suggestion.source is None:
            issues.append(f"{where}/suggest: multiply needs `from` ({suggestion.field})")
        if suggestion.quantum is not None and suggestion.quantum <= 0:
            issues.append(f"{where}/suggest: quantum must be > 0 ({suggestion.field})")
    return issues


def load_workflow(text: str, *, source: str = "<workflow>") -> Workflow:
    """Parse workflow YAML text (``WorkflowError`` with the line for syntax errors)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise WorkflowError(f"{source}: not valid YAML{where}", issues=[str(exc)]) from None
    return parse_workflow(document, source=source)


@cache
def default_workflow() -> Workflow:
    """The workflow shipped with the package (``_data/default_workflow.yaml``)."""
    text = resources.files("signalos_core.onboarding").joinpath("_data/default_workflow.yaml").read_text("utf-8")
    return load_workflow(text, source="default_workflow.yaml")


def extend_workflow(base: Workflow, firm_steps: Iterable[FirmStep]) -> Workflow:
    """``base`` with a firm's required steps inserted before the final step (``WorkflowError`` if invalid).

    A firm step's ``depends_on`` may name any non-final step of ``base`` or an earlier firm step; it defaults to
    no dependency (available at once). The final step then waits for the firm steps as well, since required.
    """
    extra = [
        StepDefinition(
            id=step.id,
            title=step.title,
            description=step.description,
            form=step.form,
            depends_on=step.depends_on,
            required=True,
            origin="firm",
        )
        for step in firm_steps
    ]
    if not extra:
        return base
    body = [step for step in base.steps if not step.final]
    final = [step for step in base.steps if step.final]
    workflow = Workflow(id=base.id, version=base.version, title=base.title, steps=(*body, *extra, *final))
    check_workflow(workflow, source="firm steps")
    return workflow


MAX_FIRM_FORM_BYTES = 16 * 1024
MAX_PATTERN_LENGTH = 200


def _nested_quantifier(pattern: str) -> bool:
    """True if a quantified group contains a quantifier, e.g. ``(a+)+`` or ``((a*))+``: catastrophic backtracking."""
    stack: list[bool] = []  # per open group: does it contain a quantifier?
    closed_had_quantifier = False
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            closed_had_quantifier = False
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            stack.append(False)
        elif char == ")" and stack:
            closed_had_quantifier = stack.pop()
            if stack:
                stack[-1] = stack[-1] or closed_had_quantifier
            index += 1
            if index < len(pattern) and pattern[index] in "*+{" and closed_had_quantifier:
                return True
            continue
        elif char in "*+{" and stack:
            stack[-1] = True  # `?` is left out: an optional group cannot blow up on its own
        index += 1
    return False


def _regex_issues(schema: Any, path: str = "form") -> list[str]:
    """Patterns a firm supplies run on every trader submission: refuse the ones that can hang the server."""
    issues: list[str] = []
    if isinstance(schema, Mapping):
        patterns = [("pattern", schema["pattern"])] if isinstance(schema.get("pattern"), str) else []
        if isinstance(schema.get("patternProperties"), Mapping):
            patterns += [("patternProperties", key) for key in schema["patternProperties"]]
        for keyword, pattern in patterns:
            if len(pattern) > MAX_PATTERN_LENGTH:
                issues.append(f"{path}/{keyword}: longer than {MAX_PATTERN_LENGTH} characters")
            elif _nested_quantifier(pattern):
                issues.append(f"{path}/{keyword}: nested quantifiers like (a+)+ can take exponential time")
            else:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    issues.append(f"{path}/{keyword}: not a valid regular expression: {exc}")
        for key, value in schema.items():
            issues += _regex_issues(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            issues += _regex_issues(item, f"{path}/{index}")
    return issues


def validate_firm_step(base: Workflow, existing: Iterable[FirmStep], step: FirmStep) -> FirmStep:
    """Check that ``step`` can be added after ``existing`` firm steps (``WorkflowError`` naming the problem).

    Besides the workflow rules, a firm's form is bounded (``MAX_FIRM_FORM_BYTES``) and its regular expressions
    must be short and free of nested quantifiers, since they run on the server for every submission.
    """
    existing = list(existing)
    document = json.loads(msgspec.json.encode(step))  # plain JSON types (tuples become arrays)
    issues = [f"{_path(err.absolute_path)}: {err.message}" for err in _step_validator().iter_errors(document)]
    if len(msgspec.json.encode(step.form)) > MAX_FIRM_FORM_BYTES:
        issues.append(f"form: larger than {MAX_FIRM_FORM_BYTES} bytes")
    issues += _regex_issues(step.form)
    if any(existing_step.id == step.id for existing_step in existing):
        issues.append(f"id: {step.id!r} already exists")
    if issues:
        raise WorkflowError("invalid firm step", issues=issues, step_id=step.id)
    extend_workflow(base, [*existing, step])
    return step
