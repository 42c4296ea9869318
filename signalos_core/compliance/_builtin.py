"""Where the built-in profiles live: inside the wheel, or the repository's ``rulesets/`` in a checkout."""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from signalos_core.compliance._yaml import read_yaml

__all__ = ["builtin_index", "builtin_rulesets_dir"]


def builtin_rulesets_dir() -> Traversable:
    """The directory of built-in YAML profiles.

    A wheel carries them at ``signalos_core/_data/rulesets`` (pyproject force-include); a source checkout
    falls back to the repository's ``rulesets/`` next to the package.
    """
    packaged = resources.files("signalos_core").joinpath("_data", "rulesets")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rulesets"


def _walk(folder: Traversable) -> list[Traversable]:
    out: list[Traversable] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            out.extend(_walk(entry))
        elif entry.name.endswith((".yaml", ".yml")):
            out.append(entry)
    return sorted(out, key=str)


@cache
def builtin_index() -> dict[str, Traversable]:
    """Profile id → file, for every built-in profile (cached for the process)."""
    index: dict[str, Traversable] = {}
    folder = builtin_rulesets_dir()
    if not folder.is_dir():  # pragma: no cover - an installation without rulesets is broken
        return index
    for entry in _walk(folder):
        raw, _marks, _issues = read_yaml(entry.read_text("utf-8"))
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            index[raw["id"]] = entry
    return index
