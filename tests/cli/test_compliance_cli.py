"""``signalos profiles | check | observe`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.main import cli

STATE = {
    "balance": "97500.00",
    "equity": "94999.99",
    "initial_balance": "100000.00",
    "day_start": {"at": "2026-05-12T00:00:00+02:00", "balance": "100000.00"},
}
ORDER = {"symbol": "EURUSD", "side": "buy", "size": "1.0", "at": "2026-05-12T13:20:00+02:00"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, payload in {
        "state": STATE,
        "order": ORDER,
        "ok_state": {**STATE, "equity": "95000.00"},
        "event": {"type": "equity_update", "at": "2026-05-12T13:20:00+02:00", "equity": "94999.99"},
        "bad_event": {"type": "equity_update", "at": "2026-05-12T13:20:00", "equity": "1"},
        "typo": {**ORDER, "sise": "1"},
    }.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(payload))
        out[name] = path
    return out


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_profiles_list_show_schema() -> None:
    code, out, _ = run("profiles", "list")
    assert code == 0
    assert "ftmo-2step-challenge" in out
    assert "topstep-combine-50k-topstepx" in out
    code, out, _ = run("profiles", "list", "--json")
    assert code == 0
    assert any(p["id"] == "esma-retail" for p in json.loads(out))
    code, out, _ = run("profiles", "show", "topstep-combine-100k", "--param", "mll=3500")
    shown = json.loads(out)
    assert code == 0
    assert len(shown["hash"]) == 64
    mll = next(r for r in shown["profile"]["rules"] if r["id"] == "topstep.maximum_loss_limit")
    assert mll["params"]["amount"] == "3500"
    code, _, err = run("profiles", "show", "no-such-profile")
    assert code == 2
    assert "no built-in profile" in err
    code, out, _ = run("profiles", "schema")
    assert code == 0
    assert json.loads(out)["title"] == "SignalOS compliance profile"


def test_profiles_lint(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text('id: x\nversion: "1"\neffective_from: 2026-01-01\nday_boundary: {timezone: UTC}\nrules: []\n')
    code, out, _ = run("profiles", "lint", str(good))
    assert code == 0
    assert "OK x 1" in out
    code, out, _ = run("profiles", "lint", "--json", str(good))
    assert json.loads(out)["ok"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text('id: x\nversoin: "1"\neffective_from: 2026-01-01\nday_boundary: {timezone: UTC, at: 17:00}\n')
    code, _, err = run("profiles", "lint", str(bad))
    assert code == 2
    assert "line 2, column 1: versoin: unknown profile key 'versoin' (did you mean 'version'?)" in err
    assert "base-60" in err
    code, out, _ = run("profiles", "lint", "--json", str(bad))
    issues = json.loads(out)["issues"]
    assert code == 2
    assert {"line", "column", "path", "message", "suggestion"} <= set(issues[0])
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [\n")
    code, _, err = run("profiles", "lint", str(broken))
    assert code == 2
    assert "not valid YAML" in err


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_check_exit_codes(files: dict[str, Path], backend: str) -> None:
    code, out, _ = run(
        "check",
        "--profile",
        "ftmo-2step-challenge",
        "--backend",
        backend,
        "--state",
        str(files["state"]),
        "--order",
        str(files["order"]),
    )
    decision = json.loads(out)
    assert code == 3
    assert decision["allowed"] is False
    assert decision["fired"][0]["message"] == (
        "equity 94,999.99 < floor 95,000.00 (base 100,000.00 at 2026-05-12 00:00 Europe/Prague)"
    )
    code, out, _ = run(
        "check",
        "--profile",
        "ftmo-2step-challenge",
        "--backend",
        backend,
        "--state",
        str(files["ok_state"]),
        "--order",
        str(files["order"]),
    )
    assert code == 0
    assert json.loads(out)["profile"]["backend"] == backend


def test_check_bad_input_and_params(files: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run(
        "check", "--profile", "ftmo-2step-challenge", "--state", str(files["state"]), "--order", str(files["typo"])
    )
    assert code == 2
    assert "sise" in err
    code, _, err = run(
        "check",
        "--profile",
        "ftmo-2step-challenge",
        "--param",
        "oops",
        "--state",
        str(files["state"]),
        "--order",
        str(files["order"]),
    )
    assert code == 2
    assert "key=value" in err
    code, _, _ = run(
        "check",
        "--profile",
        "ftmo-2step-challenge",
        "--param",
        "account_size=50000",
        "--state",
        str(files["ok_state"]),
        "--order",
        str(files["order"]),
    )
    assert code == 0
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**ORDER, "symbol": "NOPE"}))
    code, _, err = run(
        "check", "--profile", "ftmo-2step-challenge", "--state", str(files["state"]), "--order", str(unknown)
    )
    assert code == 2
    assert "unknown instrument" in err
    custom = tmp_path / "mine.yaml"
    custom.write_text(
        'id: mine\nversion: "1"\neffective_from: 2026-01-01\nday_boundary: {timezone: UTC}\n'
        "rules:\n  - {id: m.max, kind: max_loss, outcome: breach, breach_when: lt, params: {amount: 1}}\n"
    )
    code, out, _ = run(
        "check", "--profile", str(custom), "--state", str(files["state"]), "--order", str(files["order"])
    )
    assert code == 3
    assert json.loads(out)["fired"][0]["rule_id"] == "m.max"


def test_observe(files: dict[str, Path]) -> None:
    code, out, _ = run(
        "observe", "--profile", "ftmo-2step-challenge", "--state", str(files["state"]), "--event", str(files["event"])
    )
    result = json.loads(out)
    assert code == 3
    assert result["outcome"] == "breach"
    assert result["next_state"]["locks"][0]["rule_id"] == "ftmo.max_daily_loss"
    code, _, err = run(
        "observe",
        "--profile",
        "ftmo-2step-challenge",
        "--state",
        str(files["state"]),
        "--event",
        str(files["bad_event"]),
    )
    assert code == 2
    assert "naive datetime" in err
    code, out, _ = run(
        "observe",
        "--profile",
        "ftmo-2step-challenge",
        "--state",
        str(files["ok_state"]),
        "--event",
        str(files["order"]),
    )
    assert code == 2
