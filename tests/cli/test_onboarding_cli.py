"""``signalos onboarding``: validate definitions, test connections (real loopback servers), exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from service.cli.main import cli
from tests.core.onboarding.conftest import (  # noqa: F401 - the fixture is used by name
    BRIDGE_LOGIN,
    BRIDGE_PASSWORD,
    BRIDGE_SERVER,
    LoopbackServers,
    loopback,
)


def test_validate_workflow_and_firm_steps(tmp_path: Path) -> None:
    runner = CliRunner()
    good = Path(__file__).resolve().parents[2] / "signalos_core" / "onboarding" / "_data" / "default_workflow.yaml"
    result = runner.invoke(cli, ["onboarding", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["steps"][-1] == "done"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x\nversion: 1\ntitle: X\nsteps:\n  - {id: a, title: A, form: {type: object}, depends_on: [b]}\n"
    )
    result = runner.invoke(cli, ["onboarding", "validate", str(bad)])
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["ok"] is False
    assert any("not an earlier step" in issue for issue in report["issues"])
    step = tmp_path / "kyc.yaml"
    step.write_text(
        "id: firm_kyc\ntitle: ID\nform: {type: object, properties: {n: {type: string, pattern: '^(a+)+$'}}}\n"
    )
    result = runner.invoke(cli, ["onboarding", "validate", "--firm-step", str(step)])
    assert result.exit_code == 2
    assert "nested quantifiers" in result.output
    step.write_text("id: firm_kyc\ntitle: ID\nform: {type: object}\n")
    assert runner.invoke(cli, ["onboarding", "validate", "--firm-step", str(step)]).exit_code == 0
    step.write_text("id: firm_kyc\ncolour: red\n")
    assert runner.invoke(cli, ["onboarding", "validate", "--firm-step", str(step)]).exit_code == 2


def test_connection_tests_from_the_command_line(loopback: LoopbackServers, tmp_path: Path) -> None:  # noqa: F811
    answers = {
        "kind": "mt_bridge",
        "host": "127.0.0.1",
        "port": loopback.bridge(),
        "platform": "mt5",
        "login": BRIDGE_LOGIN,
        "password": BRIDGE_PASSWORD,
        "server": BRIDGE_SERVER,
    }
    # the real entry point in a subprocess
    ok = subprocess.run(  # noqa: S603 - a fixed argv of our own entry point
        [sys.executable, "-m", "service.cli", "onboarding", "test-connection", "broker", json.dumps(answers)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "ok"
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["onboarding", "test-connection", "broker", json.dumps({**answers, "port": loopback.closed_port()})]
    )
    assert refused.exit_code == 4
    assert json.loads(refused.output)["status"] == "refused"
    public = runner.invoke(cli, ["onboarding", "test-connection", "--public-only", "broker", json.dumps(answers)])
    assert json.loads(public.output)["status"] == "wrong_server"
    file = tmp_path / "answers.json"
    file.write_text(json.dumps({"kind": "mt_bridge"}))
    invalid = runner.invoke(cli, ["onboarding", "test-connection", "broker", f"@{file}"])
    assert invalid.exit_code == 2
    assert "port" in {e["field"] for e in json.loads(invalid.output)["errors"]}
    assert runner.invoke(cli, ["onboarding", "test-connection", "broker", "{not json"]).exit_code == 2
