"""docs/plugins.md: every ```python block runs, and every ``$ signalos`` line of the console block succeeds."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.main import cli

ROOT = Path(__file__).resolve().parents[3]
GUIDE = (ROOT / "docs" / "plugins.md").read_text("utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.DOTALL)
CONSOLE_LINES = [
    line[2:]
    for block in re.findall(r"```console\n(.*?)```", GUIDE, flags=re.DOTALL)
    for line in block.splitlines()
    if line.startswith("$ ")
]


def test_the_guide_has_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 3
    assert len(CONSOLE_LINES) >= 5


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_examples_run(index: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(PYTHON_BLOCKS[index], f"docs/plugins.md[python {index}]", "exec"), {})  # noqa: S102 - our own docs
    capsys.readouterr()


def test_console_walkthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs = []
    for line in CONSOLE_LINES:
        argv = shlex.split(line)
        assert argv[0] == "signalos"
        result = runner.invoke(cli, argv[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        outputs.append(json.loads(result.output))
    assert outputs[2]["result"]["side"] == "buy"
    assert outputs[-1]["result"] == {
        "symbol": "GBPUSD",
        "side": "sell",
        "action": "open",
        "order_type": "market",
        "take_profits": [],
        "confidence": 1.0,
        "note": "",
        "entry": None,
        "stop_loss": None,
    }


def test_manifest_example_is_valid() -> None:
    from signalos_core.plugins import parse_manifest

    block = re.search(r"```json\n(.*?)```", GUIDE, flags=re.DOTALL)
    assert block is not None
    assert parse_manifest(block.group(1)).id == "acme.gold-format"
