"""docs/audit.md is executable: its python blocks and ``$ signalos ...`` lines run in order in a temp dir."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.main import cli

DOC = Path(__file__).resolve().parents[3] / "docs" / "audit.md"
_BLOCK = re.compile(r"^```(python|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


def blocks() -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def run_console(block: str) -> int:
    commands = 0
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue  # sample output
        expected = _EXIT.search(line)
        argv = shlex.split(line[2:], comments=True)
        assert argv[0] == "signalos"
        result = CliRunner().invoke(cli, argv[1:], catch_exceptions=False)
        want = int(expected.group(1)) if expected else 0
        assert result.exit_code == want, f"{line!r} exited {result.exit_code}: {result.output}"
        commands += 1
    return commands


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    python_blocks = commands = 0
    for language, code in blocks():
        if language == "python":
            exec(compile(code, f"{DOC}:python-block-{python_blocks}", "exec"), namespace)  # noqa: S102 - running our own docs
            python_blocks += 1
        else:
            commands += run_console(code)
    assert python_blocks >= 5
    assert commands >= 5
    assert (tmp_path / "audit.jsonl").is_file()
