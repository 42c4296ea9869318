"""docs/compliance-modes.md: every ```python block runs, in order, in one namespace (a firm admin's walkthrough)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "compliance-modes.md"


def test_compliance_modes_walkthrough_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "compliance_modes_doc"}
    for index, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out
    assert "day_boundary" in printed  # the "did you mean" of the misspelt key
    assert "open lots 6" in printed
    assert "acme.max_daily_loss" in printed
