"""Built-in rulesets ship inside the wheel and are found there (not only in a source checkout)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_wheel_carries_rulesets_and_finds_them(tmp_path: Path) -> None:
    built = subprocess.run(  # noqa: S603 - our own interpreter building our own checkout
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]  # hatchling is a test dependency: no build isolation needed
    (wheel,) = (tmp_path / "dist").glob("signalos-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from signalos_core.compliance import builtin_rulesets_dir, list_builtin_profiles;"
        "print(json.dumps([str(builtin_rulesets_dir()), len(list_builtin_profiles())]))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", probe, str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    folder, count = json.loads(out.stdout)
    assert folder.startswith(str(site))
    assert folder.endswith("_data/rulesets")
    assert count == len(list((ROOT / "rulesets").rglob("*.yaml")))
