"""``signalos profiles | check | observe``: the compliance engine from the command line.

Only ``signalos_core`` is imported. Exit codes: 0 allowed (``check``) / no enforcement (``observe``),
2 bad input (unparseable or invalid profile, state, order or event; unknown profile; unavailable backend),
3 denied (``check``) or an enforcement action (lock or breach, ``observe``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

from signalos_core import EngineError, EvaluationError, ProfileError
from signalos_core.compliance import (
    AccountState,
    Engine,
    Event,
    Order,
    Profile,
    list_builtin_profiles,
    load_builtin_profile,
    load_profile,
    profile_hash,
    profile_json_schema,
)

EXIT_BAD_INPUT = 2
EXIT_DENIED = 3


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--param expects key=value, got {pair!r}")
        out[key] = value
    return out


def _profile(ref: str, params: dict[str, str]) -> Profile:
    path = Path(ref)
    try:
        if ref.endswith((".yaml", ".yml")) and path.exists():
            return load_profile(path, params=params)
        return load_builtin_profile(ref, params=params)
    except ProfileError as exc:
        _fail(str(exc))


def _decode(path: Path, kind: type[Any], what: str) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes(), type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        _fail(f"{what} {path}: {exc}")


@click.group("profiles")
def profiles() -> None:
    """List, show, lint and describe compliance profiles."""


@profiles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_cmd(as_json: bool) -> None:
    """List the built-in profiles (id, version, effective date, title)."""
    items = list_builtin_profiles()
    if as_json:
        click.echo(json.dumps([msgspec.to_builtins(i) for i in items], indent=2))
        return
    for item in items:
        click.echo(f"{item.id:32} {item.version:28} {item.effective_from}  {item.title}")


@profiles.command("show")
@click.argument("profile_id")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a profile parameter.")
def show_cmd(profile_id: str, params: tuple[str, ...]) -> None:
    """Print a profile (built-in id or YAML file) fully resolved, as JSON with its content hash."""
    profile = _profile(profile_id, _params(params))
    out = {"hash": profile_hash(profile), "profile": msgspec.to_builtins(profile)}
    click.echo(json.dumps(out, indent=2))


@profiles.command("lint")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print issues as JSON.")
def lint_cmd(file: Path, as_json: bool) -> None:
    """Validate a profile YAML file; print every problem with line, column and a suggestion (exit 2 if any)."""
    try:
        profile = load_profile(file)
    except ProfileError as exc:
        issues = getattr(exc, "issues", None) or [exc]
        if as_json:
            payload = [msgspec.to_builtins(i) if isinstance(i, msgspec.Struct) else {"message": str(i)} for i in issues]
            click.echo(json.dumps({"ok": False, "issues": payload}, indent=2))
        else:
            for issue in issues:
                click.echo(f"{file}: {issue}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    summary = {
        "ok": True,
        "id": profile.id,
        "version": profile.version,
        "hash": profile_hash(profile),
        "rules": len(profile.rules),
    }
    click.echo(
        json.dumps(summary) if as_json else f"{file}: OK {profile.id} {profile.version} ({len(profile.rules)} rules)"
    )


@profiles.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of profile YAML files (for editors)."""
    click.echo(json.dumps(profile_json_schema(), indent=2))


_BACKEND = click.Choice(["python", "durable"])
_JSON_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _engine_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options ``check`` and ``observe`` share: which profile, its parameters, the backend and the state."""
    for option in reversed(
        (
            click.option("--profile", "profile_ref", required=True, help="Built-in profile id or a profile YAML file."),
            click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a profile parameter."),
            click.option("--backend", type=_BACKEND, default="python", show_default=True, help="Rules backend."),
            click.option("--state", "state_path", required=True, type=_JSON_FILE, help="Account state JSON."),
        )
    ):
        func = option(func)
    return func


@click.command("check")
@_engine_options
@click.option("--order", "order_path", required=True, type=_JSON_FILE, help="Proposed order JSON.")
def check(profile_ref: str, params: tuple[str, ...], backend: str, state_path: Path, order_path: Path) -> None:
    """Pre-trade check: print the decision JSON; exit 0 allowed, 3 denied, 2 bad input."""
    profile = _profile(profile_ref, _params(params))
    state = _decode(state_path, AccountState, "state")
    order = _decode(order_path, Order, "order")
    try:
        decision = Engine(profile, backend=backend).check(state, order)  # type: ignore[arg-type]
    except (EvaluationError, EngineError) as exc:
        _fail(str(exc))
    click.echo(decision.to_json().decode())
    sys.exit(0 if decision.allowed else EXIT_DENIED)


@click.command("observe")
@_engine_options
@click.option(
    "--event",
    "event_path",
    required=True,
    type=_JSON_FILE,
    help='Event JSON with "type": equity_update | fill | clock.',
)
def observe(profile_ref: str, params: tuple[str, ...], backend: str, state_path: Path, event_path: Path) -> None:
    """Monitoring step: print the enforcement JSON (actions, next state); exit 0 none, 3 lock/breach, 2 bad input."""
    profile = _profile(profile_ref, _params(params))
    state = _decode(state_path, AccountState, "state")
    event = _decode(event_path, Event, "event")
    try:
        result = Engine(profile, backend=backend).observe(state, event)  # type: ignore[arg-type]
    except (EvaluationError, EngineError) as exc:
        _fail(str(exc))
    click.echo(result.to_json().decode())
    sys.exit(EXIT_DENIED if result.outcome in ("lock", "breach") else 0)
