"""``signalos onboarding``: check workflow/firm-step definitions and test connections from the command line.

Library-only (imports ``signalos_core``, never the web service). Exit codes: 0 ok, 2 bad input (an invalid
definition or answers), 4 the connection test ran and failed (the diagnosis says why).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["onboarding"]

EXIT_INVALID = 2
EXIT_CONNECTION_FAILED = 4


def _emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


@click.group()
def onboarding() -> None:
    """Onboarding workflows and connection tests (see docs/onboarding.md)."""


@onboarding.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--firm-step", is_flag=True, help="PATH is one firm step (YAML/JSON) to add to the default workflow.")
def validate(path: Path, firm_step: bool) -> None:
    """Validate a workflow YAML file, or with --firm-step a firm's extra step; prints every issue as JSON."""
    import msgspec
    import yaml

    from signalos_core.onboarding import FirmStep, WorkflowError, default_workflow, load_workflow, validate_firm_step

    text = path.read_text("utf-8")
    try:
        if firm_step:
            try:
                step = msgspec.convert(yaml.safe_load(text), FirmStep)
            except (msgspec.ValidationError, yaml.YAMLError) as exc:
                raise WorkflowError("invalid firm step", issues=[str(exc)]) from None
            validate_firm_step(default_workflow(), [], step)
            _emit({"ok": True, "step": step.id})
        else:
            workflow = load_workflow(text, source=str(path))
            _emit({"ok": True, "workflow": workflow.id, "steps": list(workflow.step_ids)})
    except WorkflowError as exc:
        _emit({"ok": False, "error": str(exc), "issues": exc.issues})
        sys.exit(EXIT_INVALID)


@onboarding.command("test-connection")
@click.argument("step", type=click.Choice(["broker", "signal_source"]))
@click.argument("answers_json")
@click.option("--public-only", is_flag=True, help="Refuse private/loopback targets, as the service does by default.")
def test_connection(step: str, answers_json: str, public_only: bool) -> None:
    """Test a connection described by the STEP form's answers (a JSON object, or @file.json) and print the
    diagnosis. Example: signalos onboarding test-connection broker '{"kind": "paper", "starting_balance": "1000",
    "currency": "USD"}'."""
    from signalos_core.onboarding import (
        ConnectionTesters,
        OnboardingEngine,
        StepValidationError,
        TargetPolicy,
        default_workflow,
    )

    raw = Path(answers_json[1:]).read_text("utf-8") if answers_json.startswith("@") else answers_json
    try:
        answers = json.loads(raw)
    except json.JSONDecodeError as exc:
        _emit({"ok": False, "errors": [{"field": "(answers)", "message": f"not JSON: {exc}"}]})
        sys.exit(EXIT_INVALID)
    engine = OnboardingEngine(default_workflow(), ConnectionTesters(policy=TargetPolicy(allow_private=not public_only)))
    try:
        found = asyncio.run(engine.test_connection(step, answers if isinstance(answers, dict) else {}))
    except StepValidationError as exc:
        _emit({"ok": False, "errors": exc.errors})
        sys.exit(EXIT_INVALID)
    _emit(
        {
            "ok": found.ok,
            "status": found.status.value,
            "latency_ms": found.latency_ms,
            "hint": found.hint,
            "detail": found.detail,
        }
    )
    if not found.ok:
        sys.exit(EXIT_CONNECTION_FAILED)
