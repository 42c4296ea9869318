"""Step forms: validating answers (every bad field named), constraints, suggested defaults and secret redaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from signalos_core._errors import StepValidationError
from signalos_core.onboarding._workflow import StepDefinition

__all__ = ["FORMAT_CHECKER", "REDACTED", "redact", "suggest_defaults", "validate_answers"]

REDACTED = "********"
"""What a secret (``writeOnly``) field shows once stored."""

FORMAT_CHECKER = FormatChecker()


@FORMAT_CHECKER.checks("positive-decimal", raises=(InvalidOperation, ValueError))
def _positive_decimal(value: object) -> bool:
    # Money and sizes are strings so that no binary float rounding sneaks in; they must be finite and > 0.
    if not isinstance(value, str):
        return True  # the `type` keyword reports non-strings
    number = Decimal(value)
    return number.is_finite() and number > 0


@FORMAT_CHECKER.checks("iana-timezone")
def _iana_timezone(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", value):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_REQUIRED = re.compile(r"^'([^']+)' is a required property")
_UNEXPECTED = re.compile(r"'([^']+)'")


def _field_errors(error: ValidationError) -> list[dict[str, str]]:
    base = ".".join(str(part) for part in error.absolute_path)

    def join(name: str) -> str:
        return f"{base}.{name}" if base else name

    if error.validator == "required":
        match = _REQUIRED.match(error.message)
        return [{"field": join(match.group(1)) if match else base, "message": "is required"}]
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        names = _UNEXPECTED.findall(error.message.split("(", 1)[-1]) or [base]
        return [{"field": join(name), "message": "is not a field of this form"} for name in names]
    if error.validator == "format":
        return [{"field": base, "message": f"must be a valid {error.validator_value}"}]
    message = error.message
    if error.validator == "pattern":
        message = f"does not match the expected format {error.validator_value}"
    elif error.validator == "enum" and isinstance(error.validator_value, list):
        message = f"must be one of {', '.join(map(str, error.validator_value))}"
    return [{"field": base or "(form)", "message": message}]


def _declared(schema: Any) -> frozenset[str]:
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            properties = node.get("properties")
            if isinstance(properties, Mapping):
                names.update(str(name) for name in properties)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(names)


def _validator(step: StepDefinition) -> Draft202012Validator:
    return Draft202012Validator(step.form, format_checker=FORMAT_CHECKER)


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _lookup(ref: str, answers: Mapping[str, Any], earlier: Mapping[str, Mapping[str, Any]]) -> Any:
    if "." in ref:
        step_id, field = ref.split(".", 1)
        return earlier.get(step_id, {}).get(field)
    return answers.get(ref)


def validate_answers(
    step: StepDefinition, answers: Mapping[str, Any], earlier: Mapping[str, Mapping[str, Any]]
) -> None:
    """Check ``answers`` against the step's JSON Schema and constraints; ``StepValidationError`` names each field.

    ``earlier`` maps step ids to their stored answers (for cross-step constraints such as lots <= max lots).
    """
    errors: list[dict[str, str]] = []
    found = sorted(_validator(step).iter_errors(answers), key=lambda e: list(map(str, e.absolute_path)))
    # When a conditional branch (allOf/if/then) fails, JSON Schema forgets that its properties were evaluated,
    # so `unevaluatedProperties` would also flag every valid field of that branch. While other errors exist,
    # only fields declared nowhere in the form are reported as unexpected; the rest surface once those are fixed.
    others = [e for e in found if e.validator != "unevaluatedProperties"]
    declared = _declared(step.form) if others else frozenset()
    for error in found:
        for item in _field_errors(error):
            unexpected = error.validator == "unevaluatedProperties"
            if unexpected and item["field"] in declared:
                continue
            if item not in errors:
                errors.append(item)
    bad_fields = {item["field"] for item in errors}
    for constraint in step.constraints:
        if constraint.field in bad_fields or constraint.field not in answers:
            continue
        value = _decimal(answers[constraint.field])
        for bound_ref, comparator in ((constraint.max, "at most"), (constraint.min, "at least")):
            if bound_ref is None:
                continue
            bound = _decimal(_lookup(bound_ref, answers, earlier))
            if value is None or bound is None:
                if "." in bound_ref:  # fail closed: a limit that cannot be read cannot be respected
                    errors.append(
                        {"field": constraint.field, "message": f"cannot be checked against {bound_ref} (not set)"}
                    )
                continue
            # Explicit comparators: `max` is inclusive (value <= bound), `min` is inclusive (value >= bound).
            broken = value > bound if comparator == "at most" else value < bound
            if broken:
                errors.append({"field": constraint.field, "message": f"must be {comparator} {bound_ref} ({bound})"})
    if errors:
        fields = ", ".join(sorted({item["field"] for item in errors}))
        raise StepValidationError(f"step {step.id}: invalid answers ({fields})", step_id=step.id, errors=errors)


def suggest_defaults(step: StepDefinition, earlier: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Suggested values for the step's fields, derived from constants and earlier answers.

    A suggestion whose source is missing or not a number (when it must be scaled) is left out, never guessed.
    """
    suggested: dict[str, Any] = {}
    for suggestion in step.suggest:
        if suggestion.source is None:
            suggested[suggestion.field] = suggestion.value
            continue
        value = _lookup(suggestion.source, {}, earlier)
        if value is None or value == REDACTED:
            continue
        if suggestion.multiply is None:
            suggested[suggestion.field] = value
            continue
        number = _decimal(value)
        if number is None:
            continue
        scaled = number * suggestion.multiply
        if suggestion.quantum is not None:
            scaled = scaled.quantize(suggestion.quantum, rounding=ROUND_DOWN)
        if suggestion.minimum is not None and scaled < suggestion.minimum:
            scaled = suggestion.minimum
        suggested[suggestion.field] = str(scaled)
    return suggested


def redact(step: StepDefinition, answers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``answers`` with every secret (``writeOnly``) field replaced by :data:`REDACTED`."""
    secrets = step.secret_fields()
    return {key: (REDACTED if key in secrets else value) for key, value in answers.items()}
