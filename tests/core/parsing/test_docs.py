"""docs/signal-parsing.md: its python examples run and its YAML template example loads."""

from __future__ import annotations

import re
from pathlib import Path

from signalos_core.parsing import load_template

DOC = Path(__file__).resolve().parents[3] / "docs" / "signal-parsing.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_yaml_template_example_is_valid() -> None:
    (yaml_text,) = _blocks("yaml")
    template = load_template(yaml_text)
    assert template.defaults.symbol == "XAUUSD"
    assert template.defaults.advice == "info"
    assert template.keywords["sl"] == ["pare"]


def test_python_examples_run() -> None:
    (yaml_text,) = _blocks("yaml")
    namespace: dict[str, object] = {"TEMPLATE_YAML": yaml_text}
    blocks = _blocks("python")
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - executing our own documentation


def test_cli_lines_name_real_commands() -> None:
    from service.cli.main import _COMMANDS

    text = DOC.read_text(encoding="utf-8")
    for command in re.findall(r"^signalos ([a-z-]+)", text, flags=re.M):
        assert command in _COMMANDS
