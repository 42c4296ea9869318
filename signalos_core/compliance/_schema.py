"""JSON Schema for profile YAML, generated from the Structs (editors validate against it).

``RuleSpec.params`` is typed per ``kind``: the generated schema adds one ``if kind == X then params: <X's
params schema>`` clause per rule kind, so an editor checks params too. A copy ships in the package as
``_data/profile.schema.json`` (a test keeps it equal to the generated one).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec

from signalos_core.compliance._profile import Profile
from signalos_core.compliance._registry import KINDS

__all__ = ["packaged_schema", "profile_json_schema"]


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a profile file."""
    kinds = sorted(KINDS)
    params_types = [KINDS[k].params for k in kinds]
    (profile_ref, *param_refs), components = msgspec.json.schema_components(
        [Profile, *params_types], ref_template="#/$defs/{name}"
    )
    rule = components["RuleSpec"]
    rule["properties"]["kind"] = {"enum": kinds, "description": "Rule kind from the documented library"}
    rule["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {"params": ref}},
        }
        for kind, ref in zip(kinds, param_refs, strict=True)
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://signalos.dev/schemas/compliance-profile.json",
        "title": "SignalOS compliance profile",
        **profile_ref,
        "$defs": components,
    }


def packaged_schema() -> dict[str, Any]:
    """The schema file shipped in the package (for editors that want a path, not a command)."""
    text = resources.files("signalos_core.compliance").joinpath("_data/profile.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
