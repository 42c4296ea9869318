"""Load a firm's YAML profile strictly: every problem reported at once, with line, column, path and a
"did you mean"; ``extends`` and ``${parameter}`` references resolved; a content hash for the audit trail.

Validation is per field (not stop-at-first-error): top-level keys, every rule's keys, kind, comparator and each
of its params are checked separately against the Structs, so one run shows an author all of their mistakes.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import os
import re
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from signalos_core._errors import ProfileNotFoundError, ProfileSchemaError
from signalos_core.compliance._builtin import builtin_index
from signalos_core.compliance._calendar import zone
from signalos_core.compliance._profile import DayBoundary, ParameterSpec, Profile, RuleSpec
from signalos_core.compliance._registry import KINDS
from signalos_core.compliance._yaml import Marks, ProfileIssue, read_yaml

__all__ = ["load_profile", "profile_hash"]

PathT = tuple[str | int, ...]
Resolver = Callable[[str], str]
_REF = re.compile(r"^\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([*/+-])\s*([0-9]+(?:\.[0-9]+)?)\s*)?\}$")
_MSGSPEC_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.S)
_MAX_EXTENDS = 8


@cache
def _field_struct(owner: type[msgspec.Struct], name: str) -> type[msgspec.Struct]:
    """A one-field Struct with ``owner.name``'s type, to validate that field on its own."""
    hint = typing.get_type_hints(owner, include_extras=True)[name]
    return msgspec.defstruct(f"_{owner.__name__}_{name}", [(name, hint)])


def _fields(owner: type[msgspec.Struct]) -> dict[str, bool]:
    """Field name → required."""
    return {f.name: f.required for f in msgspec.structs.fields(owner)}


def _suggest(word: str, choices: list[str]) -> str | None:
    hits = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return hits[0] if hits else None


class _Checker:
    """Collects issues while validating one raw profile mapping."""

    def __init__(self, marks: Marks, issues: list[ProfileIssue]) -> None:
        self.marks = marks
        self.issues = issues

    def add(self, path: PathT, message: str, *, suggestion: str | None = None, key: bool = False) -> None:
        self.issues.append(self.marks.issue(path, message, suggestion=suggestion, key=key))

    def keys(self, raw: Mapping[str, Any], owner: type[msgspec.Struct], path: PathT, *, what: str) -> bool:
        """Unknown and missing keys of ``raw`` against ``owner``; returns True when the keys are fine."""
        ok = True
        fields = _fields(owner)
        for key in raw:
            if key not in fields:
                ok = False
                self.add((*path, key), f"unknown {what} key {key!r}", suggestion=_suggest(key, list(fields)), key=True)
        for name, required in fields.items():
            if required and name not in raw:
                ok = False
                self.add(path, f"missing required {what} key {name!r}")
        return ok

    def values(
        self, raw: Mapping[str, Any], owner: type[msgspec.Struct], path: PathT, skip: tuple[str, ...] = ()
    ) -> bool:
        """Validate every known key of ``raw`` against its field type, each on its own."""
        ok = True
        fields = _fields(owner)
        for key, value in raw.items():
            if key not in fields or key in skip:
                continue
            try:
                msgspec.convert({key: value}, _field_struct(owner, key))
            except msgspec.ValidationError as exc:
                ok = False
                message, sub = _split(str(exc))
                self.add((*path, *_path_parts(sub)), message)
        return ok


def _split(text: str) -> tuple[str, str]:
    match = _MSGSPEC_AT.match(text)
    assert match is not None  # noqa: S101 - the pattern matches any string
    return match.group(1), match.group(2) or ""


def _path_parts(sub: str) -> PathT:
    """``.rules[2].x`` → ("rules", 2, "x")."""
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", sub):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _check_rule(chk: _Checker, rule: Any, path: PathT) -> None:
    if not isinstance(rule, dict):
        chk.add(path, "a rule must be a mapping")
        return
    chk.keys(rule, RuleSpec, path, what="rule")
    chk.values(rule, RuleSpec, path, skip=("kind", "params"))
    kind_name = rule.get("kind")
    if kind_name is None:
        return
    spec = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if spec is None:
        chk.add((*path, "kind"), f"unknown rule kind {kind_name!r}", suggestion=_suggest(str(kind_name), list(KINDS)))
        return
    params = rule.get("params", {})
    if not isinstance(params, dict):
        chk.add((*path, "params"), "params must be a mapping")
    else:
        ppath = (*path, "params")
        keys_ok = chk.keys(params, spec.params, ppath, what=f"{kind_name} param")
        if chk.values(params, spec.params, ppath) and keys_ok:
            try:
                msgspec.convert(params, spec.params)
            except msgspec.ValidationError as exc:
                message, sub = _split(str(exc))
                chk.add((*ppath, *_path_parts(sub)), message)
    comparator = rule.get("breach_when")
    if spec.needs_comparator and comparator is None:
        chk.add(path, f"rule kind {kind_name!r} needs an explicit comparator: breach_when: lt | le | gt | ge")
    if not spec.needs_comparator and comparator is not None:
        chk.add((*path, "breach_when"), f"rule kind {kind_name!r} has no comparable limit; remove breach_when")
    outcome = rule.get("outcome")
    is_objective = "objective" in spec.phases
    if outcome is not None and (outcome == "objective") != is_objective:
        wanted = "objective" if is_objective else "deny, breach, lock or warn"
        chk.add((*path, "outcome"), f"rule kind {kind_name!r} takes outcome {wanted}, not {outcome!r}")
    for name in ("accounts_created_from", "accounts_created_before"):
        when = rule.get(name)
        if isinstance(when, dt.datetime) and when.utcoffset() is None:
            chk.add((*path, name), f"{name} needs a timezone offset (e.g. 2024-08-25T17:00:00-05:00)")
    if "if_created_unknown" in rule and not any(
        rule.get(k) for k in ("accounts_created_from", "accounts_created_before")
    ):
        chk.add(
            (*path, "if_created_unknown"), "if_created_unknown needs accounts_created_from or accounts_created_before"
        )
    if rule.get("warn_at") and not spec.warnable:
        chk.add((*path, "warn_at"), f"rule kind {kind_name!r} does not support warn_at")


def _coerce_param(spec_type: str, value: Any) -> Any:
    """Convert a CLI/API override string to the parameter's type (``ValueError`` if it does not fit)."""
    if not isinstance(value, str):
        return value
    if spec_type in ("money", "decimal"):
        try:
            out = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a decimal number") from exc
        if not out.is_finite():
            raise ValueError(f"{value!r} is not finite")
        return out
    if spec_type == "integer":
        return int(value)
    if spec_type == "boolean":
        if value.lower() not in ("true", "false"):
            raise ValueError(f"{value!r} is not true/false")
        return value.lower() == "true"
    return value


def _substitute(chk: _Checker, node: Any, path: PathT, values: dict[str, Any]) -> Any:
    """Replace ``${name}`` / ``${name * k}`` strings with parameter values, recursively."""
    if isinstance(node, dict):
        return {k: _substitute(chk, v, (*path, k), values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(chk, v, (*path, i), values) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("${"):
        match = _REF.match(node)
        if match is None:
            chk.add(path, f"bad parameter reference {node!r}; use ${{name}} or ${{name * 0.05}}")
            return node
        name, op, operand = match.groups()
        if name not in values:
            chk.add(path, f"unknown parameter {name!r}", suggestion=_suggest(name, list(values)))
            return node
        value = values[name]
        if op is None:
            return value
        if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
            chk.add(path, f"parameter {name!r} is not a number")
            return node
        num, k = Decimal(value), Decimal(operand)
        if op == "/" and k == 0:
            chk.add(path, f"division by zero in {node!r}")
            return node
        if op == "*":
            return num * k
        if op == "/":
            return num / k
        return num + k if op == "+" else num - k
    return node


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child over base: parameters merged per name, rules replaced by id, ``remove_rules`` dropped."""
    merged = {**base, **child}
    params = dict(base.get("parameters") or {})
    for name, spec in (child.get("parameters") or {}).items():
        params[name] = (
            {**params[name], **spec} if isinstance(params.get(name), dict) and isinstance(spec, dict) else spec
        )
    merged["parameters"] = params
    rules = [r for r in (base.get("rules") or []) if isinstance(r, dict)]
    by_id = {r.get("id"): i for i, r in enumerate(rules)}
    for rule in child.get("rules") or []:
        if isinstance(rule, dict) and rule.get("id") in by_id:
            rules[by_id[rule["id"]]] = rule
        else:
            rules.append(rule)
    removed = set(child.get("remove_rules") or [])
    merged["rules"] = [r for r in rules if not (isinstance(r, dict) and r.get("id") in removed)]
    merged["remove_rules"] = sorted(removed | set(base.get("remove_rules") or []))
    return merged


def _default_resolver(profile_id: str) -> str:
    index = builtin_index()
    if profile_id not in index:
        raise ProfileNotFoundError(f"no built-in profile {profile_id!r} to extend", profile_id=profile_id)
    return index[profile_id].read_text("utf-8")


def _raw(text: str | bytes, resolver: Resolver, depth: int) -> tuple[Any, Marks, list[ProfileIssue]]:
    raw, marks, issues = read_yaml(text)
    if not isinstance(raw, dict):
        issues.append(ProfileIssue(path="", message="a profile must be a YAML mapping", line=1, column=1))
        return {}, marks, issues
    parent = raw.get("extends")
    if isinstance(parent, str):
        if depth >= _MAX_EXTENDS:
            issues.append(marks.issue(("extends",), "extends chain too deep (cycle?)"))
            return raw, marks, issues
        try:
            base_text = resolver(parent)
        except ProfileNotFoundError as exc:
            issues.append(marks.issue(("extends",), str(exc)))
            return raw, marks, issues
        base, _base_marks, base_issues = _raw(base_text, resolver, depth + 1)
        issues.extend(ProfileIssue(path=f"(extends {parent}) {i.path}", message=i.message) for i in base_issues)
        raw = _merge(base, raw)
    return raw, marks, issues


def load_profile(
    source: str | bytes | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    resolver: Resolver | None = None,
) -> Profile:
    """Load and validate a profile from YAML text (``str``/``bytes``) or a file (``os.PathLike``, or a one-line
    ``str`` ending in ``.yaml``/``.yml`` that names an existing file).

    ``params`` override parameter defaults (strings are converted to the parameter's type); ``resolver`` maps
    an ``extends`` id to YAML text (default: built-in profiles, then ``*.yaml`` files next to a path source).
    Raises ``ProfileSyntaxError`` for unparseable YAML and ``ProfileSchemaError`` listing every issue.
    """
    if isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml")) and Path(source).is_file():
        source = Path(source)  # a one-line string naming a YAML file is a path, not a one-line profile
    if isinstance(source, os.PathLike):
        path = Path(source)
        text: str | bytes = path.read_text("utf-8")
        resolver = resolver or _sibling_resolver(path.parent)
    else:
        text = source
    raw, marks, issues = _raw(text, resolver or _default_resolver, 0)
    chk = _Checker(marks, issues)
    profile_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    chk.keys(raw, Profile, (), what="profile")
    values = _parameters(chk, raw, params or {})
    raw = _substitute(chk, raw, (), values) if values else raw
    chk.values(raw, Profile, (), skip=("rules",))
    _semantic(chk, raw)
    if issues:
        summary = f"{len(issues)} problem(s) in profile {profile_id or '<unknown>'}:\n" + "\n".join(
            f"  {issue}" for issue in issues
        )
        raise ProfileSchemaError(summary, issues=list(issues), profile_id=profile_id)
    return msgspec.convert(raw, Profile)


def _sibling_resolver(folder: Path) -> Resolver:
    def resolve(profile_id: str) -> str:
        index = builtin_index()
        if profile_id in index:
            return index[profile_id].read_text("utf-8")
        for candidate in sorted(folder.glob("*.y*ml")):
            raw, _marks, _issues = read_yaml(candidate.read_text("utf-8"))
            if isinstance(raw, dict) and raw.get("id") == profile_id:
                return candidate.read_text("utf-8")
        raise ProfileNotFoundError(f"no profile {profile_id!r} to extend", profile_id=profile_id)

    return resolve


def _parameters(chk: _Checker, raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    specs = raw.get("parameters") or {}
    values: dict[str, Any] = {}
    if not isinstance(specs, dict):
        return values
    for name, spec in specs.items():
        try:
            parsed = msgspec.convert(spec, ParameterSpec)
        except msgspec.ValidationError as exc:
            message, sub = _split(str(exc))
            chk.add(("parameters", name, *_path_parts(sub)), message)
            continue
        if not _default_fits(parsed):
            chk.add(("parameters", name, "default"), f"default {parsed.default!r} is not a {parsed.type}")
        values[name] = parsed.default
    for name, value in overrides.items():
        if name not in values:
            chk.add(("parameters",), f"unknown parameter override {name!r}", suggestion=_suggest(name, list(values)))
            continue
        try:
            values[name] = _coerce_param(specs[name].get("type", "string"), value)
        except ValueError as exc:
            chk.add(("parameters", name), f"override {name}={value!r}: {exc}")
            continue
        raw["parameters"][name] = {**specs[name], "default": values[name]}
    return values


def _default_fits(spec: ParameterSpec) -> bool:
    value = spec.default
    if value is None:
        return True
    if spec.type in ("money", "decimal"):
        return isinstance(value, (Decimal, int)) and not isinstance(value, bool)
    if spec.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.type == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str)


def _semantic(chk: _Checker, raw: dict[str, Any]) -> None:
    boundary = raw.get("day_boundary")
    if isinstance(boundary, dict) and isinstance(boundary.get("timezone"), str):
        chk.keys(boundary, DayBoundary, ("day_boundary",), what="day_boundary")
        try:
            zone(boundary["timezone"])
        except ValueError:
            chk.add(("day_boundary", "timezone"), f"unknown IANA timezone {boundary['timezone']!r}")
    rules = raw.get("rules")
    if rules is None:
        return
    if not isinstance(rules, list):
        chk.add(("rules",), "rules must be a list")
        return
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        _check_rule(chk, rule, ("rules", i))
        rid = rule.get("id") if isinstance(rule, dict) else None
        if isinstance(rid, str):
            if rid in seen:
                chk.add(("rules", i, "id"), f"duplicate rule id {rid!r}")
            seen.add(rid)


def profile_hash(profile: Profile) -> str:
    """sha256 (hex) of the canonical JSON of a resolved profile: the identity the audit trail records."""
    return hashlib.sha256(msgspec.json.encode(profile, order="sorted")).hexdigest()
