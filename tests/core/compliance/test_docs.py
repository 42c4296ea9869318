"""The docs' examples run: the profile example loads, the library example executes."""

from __future__ import annotations

import re
from pathlib import Path

from signalos_core.compliance import Engine, kind_names, load_profile

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _blocks(name: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / name).read_text("utf-8"), re.S)


def test_profile_authoring_example_loads_and_compiles() -> None:
    (example,) = _blocks("profile-authoring.md", "yaml")
    profile = load_profile(example)
    assert profile.id == "acme-2step-eval"
    assert len(profile.rules) == 7
    Engine(profile)


def test_every_rule_kind_is_documented() -> None:
    text = (DOCS / "profile-authoring.md").read_text("utf-8")
    assert all(f"| `{kind}` |" in text for kind in kind_names())


def test_library_example_runs() -> None:
    for block in _blocks("compliance-engine.md", "python"):
        exec(compile(block, "compliance-engine.md", "exec"), {})  # noqa: S102 - executing our own documentation
