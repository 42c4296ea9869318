"""A YAML reader for profiles that keeps every node's position and refuses YAML 1.1 traps.

PyYAML follows YAML 1.1, which silently turns ``no`` into ``False``, ``010`` into ``8``, ``17:00`` into the
sexagesimal integer ``1020`` and leaves ``1e3`` a *string*. A compliance limit must never change meaning that
way, so this module composes the node graph itself (``yaml.compose``) and builds plain Python values from it:
floats become exact :class:`~decimal.Decimal` values, and each trap, duplicate key or non-finite number is
reported as a :class:`ProfileIssue` with its line and column instead of being accepted.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import yaml

from signalos_core._errors import ProfileSyntaxError

__all__ = ["Marks", "ProfileIssue", "read_yaml"]

Path = tuple[str | int, ...]

_BOOL_WORDS = {"true", "false"}
_NUMBERISH = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)$")
_LEADING_ZERO_INT = re.compile(r"^[-+]?0[0-9_]+$")
_RADIX_INT = re.compile(r"^[-+]?0[xXoObB]")


class ProfileIssue(msgspec.Struct, frozen=True, kw_only=True):
    """One problem in a profile: where (1-based line/column, dotted path), what, and a suggestion if any."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{where}{self.path or '<root>'}: {self.message}{hint}"


def format_path(path: Path) -> str:
    """Render ``("rules", 2, "params", "amount")`` as ``rules[2].params.amount``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class Marks:
    """Maps a value path (and a mapping key path) to the 1-based (line, column) it came from."""

    def __init__(self) -> None:
        self.values: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, tuple[int, int]] = {}

    def at(self, path: Path, *, key: bool = False) -> tuple[int | None, int | None]:
        """Best-known position for ``path``: the exact node, else its nearest recorded ancestor."""
        table = self.keys if key else self.values
        probe = path
        while True:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return (None, None)
            probe = probe[:-1]

    def issue(self, path: Path, message: str, *, suggestion: str | None = None, key: bool = False) -> ProfileIssue:
        """Build a :class:`ProfileIssue` located at ``path``."""
        line, column = self.at(path, key=key)
        return ProfileIssue(path=format_path(path), message=message, line=line, column=column, suggestion=suggestion)


class _Builder:
    """Turns a composed node graph into Python values, recording marks and traps."""

    def __init__(self) -> None:
        self.marks = Marks()
        self.issues: list[ProfileIssue] = []

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.marks.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)  # noqa: S101 - compose() yields only these three node types
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append(self.marks.issue(path, "mapping keys must be plain strings"))
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key == "<<" and key_node.style is None:
                self.marks.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                self.issues.append(
                    self.marks.issue(child, "YAML merge keys (<<) are not supported; write the values out", key=True)
                )
                continue
            self.marks.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                self.issues.append(
                    self.marks.issue(child, f"duplicate key {key!r} (YAML keeps only the last)", key=True)
                )
            out[key] = self.build(value_node, child)
        return out

    def _trap(self, path: Path, message: str) -> None:
        self.issues.append(self.marks.issue(path, message))

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        text: str = node.value
        if node.style is not None:  # quoted or block scalars are always strings: no YAML 1.1 resolution
            return text
        tag = node.tag
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:bool":
            if text.lower() not in _BOOL_WORDS:
                self._trap(
                    path,
                    f"YAML 1.1 reads unquoted {text!r} as the boolean {text.lower() in ('yes', 'on', 'y')}; "
                    f"quote it ('{text}') if you mean text, or write true/false",
                )
            return text.lower() in ("true", "yes", "on", "y")
        if tag == "tag:yaml.org,2002:int":
            if ":" in text:
                self._trap(path, f"YAML 1.1 reads unquoted {text!r} as a base-60 number; quote times: '{text}'")
                return text
            if _LEADING_ZERO_INT.match(text) or _RADIX_INT.match(text) or "_" in text:
                self._trap(path, f"YAML 1.1 reads {text!r} as an octal/hex/underscored number; write a plain decimal")
                return text
            return int(text)
        if tag == "tag:yaml.org,2002:float":
            if ":" in text:
                self._trap(path, f"YAML 1.1 reads unquoted {text!r} as a base-60 number; quote times: '{text}'")
                return text
            try:
                value = Decimal(text.replace("_", ""))
            except InvalidOperation:
                value = Decimal("NaN")
            if not value.is_finite() or "_" in text:
                self._trap(path, f"{text!r} is not a finite plain decimal number")
                return text
            return value
        if tag == "tag:yaml.org,2002:timestamp":
            return yaml.SafeLoader.construct_yaml_timestamp(yaml.SafeLoader(""), node)
        if tag == "tag:yaml.org,2002:str" and _NUMBERISH.match(text) and any(c.isdigit() for c in text):
            self._trap(
                path, f"YAML 1.1 reads {text!r} as a string, not a number; write it as a plain decimal (e.g. 1000)"
            )
        return text


def read_yaml(text: str | bytes) -> tuple[Any, Marks, list[ProfileIssue]]:
    """Parse one YAML document into plain values, its marks and any YAML-1.1 trap issues.

    Raises :class:`ProfileSyntaxError` (with line/column) when the text is not YAML at all.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise ProfileSyntaxError(
            f"not valid YAML: {exc.problem or exc} (line {line}, column {column})", line=line, column=column
        ) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - reader errors without a mark are rare (bad encodings)
        raise ProfileSyntaxError(f"not valid YAML: {exc}") from exc
    builder = _Builder()
    if node is None:
        return None, builder.marks, []
    value = builder.build(node, ())
    return value, builder.marks, builder.issues
