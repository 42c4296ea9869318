"""The ``signalos`` command: help everywhere, version, secrets, migrations, user bootstrap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.main import _COMMANDS, cli


def test_every_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in _COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["no-such-command"]).exit_code == 2


def test_version() -> None:
    from signalos_core import __version__

    result = CliRunner().invoke(cli, ["version", "--json"])
    assert json.loads(result.output)["signalos"] == __version__
    assert CliRunner().invoke(cli, ["version"]).output.strip() == f"signalos {__version__}"


def test_secrets_generate_produces_valid_settings() -> None:
    from service.settings import Settings

    output = CliRunner().invoke(cli, ["secrets", "generate"]).output
    env = dict(line.split("=", 1) for line in output.strip().splitlines())
    settings = Settings.from_env(env)
    assert len(settings.data_keys) == 1


def test_db_upgrade_current_and_user_bootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALOS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SIGNALOS_DEV", "1")
    monkeypatch.setenv("SIGNALOS_ARGON2_MEMORY_KIB", "8")
    monkeypatch.setenv("SIGNALOS_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("SIGNALOS_ARGON2_PARALLELISM", "1")
    runner = CliRunner()
    assert json.loads(runner.invoke(cli, ["db", "current"]).output)["up_to_date"] is False
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["db", "current"]).output)["up_to_date"] is True
    created = runner.invoke(
        cli,
        ["users", "create", "--email", "root@example.com", "--role", "platform_admin"],
        input="a long admin password\na long admin password\n",
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.output.strip().splitlines()[-1])["role"] == "platform_admin"
    again = runner.invoke(
        cli, ["users", "create", "--email", "root@example.com"], input="a long admin password\na long admin password\n"
    )
    assert again.exit_code == 2


def test_bad_configuration_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNALOS_DEV", raising=False)
    monkeypatch.delenv("SIGNALOS_JWT_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "SIGNALOS_JWT_SECRET" in result.output


def test_console_script_runs_in_a_subprocess() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "service.cli", "version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0
    assert completed.stdout.startswith("signalos ")
