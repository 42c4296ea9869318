"""docs/offline.md: every ```python block runs, and the outcome table lists exactly the codes the parser knows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from signalos_core.offline import Outcome

ROOT = Path(__file__).resolve().parents[3]
GUIDE = (ROOT / "docs" / "offline.md").read_text("utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_examples_run(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(PYTHON_BLOCKS[index], f"docs/offline.md[python {index}]", "exec"), {})  # noqa: S102 - our own docs
    capsys.readouterr()


def test_every_documented_outcome_code_parses() -> None:
    table = GUIDE.split("## Outcome codes", 1)[1].split("\n## ", 1)[0]
    codes = re.findall(r"^\| `([^`]+)`", table, flags=re.MULTILINE)
    assert len(codes) == 12  # 11 from the issue, plus rejected:client_upgrade_required
    for code in codes:
        Outcome.parse(code.replace("<rule-id>", "max_lot").replace("<cause>", "provider_unavailable"))
