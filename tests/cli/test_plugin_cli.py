"""``signalos plugin``: new, keygen, pack, sign, verify, run through click's CliRunner."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from service.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


def _invoke(*args: str, input_text: str | None = None) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["plugin", *args], input=input_text, catch_exceptions=False)
    return result, json.loads(result.output)


@pytest.fixture
def keyfiles(tmp_path: Path) -> tuple[Path, Path]:
    key, keyring = tmp_path / "acme.key", tmp_path / "keyring.json"
    result, body = _invoke("keygen", "--publisher", "acme", "--out", str(key), "--keyring", str(keyring))
    assert result.exit_code == 0
    assert body["key_id"].startswith("ed25519:")
    assert body["publisher"] == "acme"
    return key, keyring


@pytest.mark.parametrize("kind", ["parser", "strategy", "provider"])
def test_new_pack_sign_verify_run(tmp_path: Path, keyfiles: tuple[Path, Path], kind: str) -> None:
    key, keyring = keyfiles
    folder = tmp_path / "my-plugin"
    result, body = _invoke("new", str(folder), "--id", f"acme.my-{kind}", "--kind", kind)
    assert result.exit_code == 0, result.output
    assert body["files"] == ["plugin.json", "plugin.py"]
    archive = tmp_path / "my.zip"
    result, body = _invoke("pack", str(folder), "-o", str(archive))
    assert result.exit_code == 0, result.output
    assert body["version"] == "0.1.0"
    result, body = _invoke("verify", str(archive), "--keyring", str(keyring))
    assert (result.exit_code, body["reason"]) == (4, "missing_signature")
    result, body = _invoke("sign", str(archive), "--key", str(key))
    assert result.exit_code == 0, result.output
    result, body = _invoke("verify", str(archive), "--keyring", str(keyring))
    assert result.exit_code == 0, result.output
    assert (body["plugin_id"], body["kind"]) == (f"acme.my-{kind}", kind)
    assert body["permissions"]["network"] == []
    method, payload = {
        "parser": ("parse", {"text": "BUY EURUSD SL 1.05"}),
        "strategy": (
            "adjust",
            {
                "intent": {"intent_id": "i", "symbol": "EURUSD", "side": "buy", "size": "1"},
                "account": {"account_id": "a", "currency": "USD", "balance": "1000", "equity": "1000"},
            },
        ),
        "provider": ("test_connection", {"api_key": ""}),
    }[kind]
    result, body = _invoke("run", str(archive), method, "--keyring", str(keyring), "--input", json.dumps(payload))
    assert result.exit_code == 0, result.output
    assert body["sandbox"]["seccomp"] is True
    expected = {
        "parser": {"symbol": "EURUSD", "side": "buy", "stop_loss": "1.05"},
        "strategy": {"decision": "veto", "reason": "no stop loss"},
        "provider": {"status": "bad_credentials", "hint": "set api_key"},
    }[kind]
    assert expected.items() <= body["result"].items()


def test_run_a_folder_with_stdin_input() -> None:
    result, body = _invoke("run", str(EXAMPLES / "gold-format"), "parse", input_text='{"text": "XAUUSD SELL"}')
    assert result.exit_code == 0, result.output
    assert body["result"]["side"] == "sell"


def test_run_reports_bad_input_and_sandbox_failures(tmp_path: Path) -> None:
    folder = EXAMPLES / "gold-format"
    result, body = _invoke("run", str(folder), "parse", "--input", "{not json")
    assert result.exit_code == 2
    result, body = _invoke("run", str(folder), "parse", "--input", '{"txt": "x"}')
    assert (result.exit_code, body["reason"]) == (2, "bad_request")
    result, body = _invoke("run", str(folder), "adjust", "--input", "{}")
    assert (result.exit_code, body["reason"]) == (2, "bad_request")
    slow = tmp_path / "slow"
    _invoke("new", str(slow), "--id", "acme.slow", "--kind", "parser")
    (slow / "plugin.py").write_text("class Plugin:\n    def parse(self, r):\n        while True:\n            pass\n")
    result, body = _invoke("run", str(slow), "parse", "--input", '{"text": "x"}', "--timeout-ms", "200")
    assert (result.exit_code, body["reason"]) == (5, "timeout")
    assert body["plugin_id"] == "acme.slow"
    result, body = _invoke("run", str(tmp_path / "slow" / "plugin.py"), "parse", "--input", "{}")
    assert result.exit_code == 2
    assert "--keyring" in body["error"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result, body = _invoke("run", str(empty), "parse", "--input", "{}")
    assert result.exit_code == 2


def test_tampered_package_fails_verification_and_run(tmp_path: Path, keyfiles: tuple[Path, Path]) -> None:
    key, keyring = keyfiles
    archive = tmp_path / "gold.zip"
    _invoke("pack", str(EXAMPLES / "gold-format"), "-o", str(archive))
    _invoke("sign", str(archive), "--key", str(key))
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            body = source.read(name)
            target.writestr(name, body + b"\n# evil\n" if name.endswith(".py") else body)
    result, body = _invoke("verify", str(tampered), "--keyring", str(keyring))
    assert (result.exit_code, body["reason"]) == (4, "modified_file")
    result, body = _invoke("run", str(tampered), "parse", "--keyring", str(keyring), "--input", "{}")
    assert (result.exit_code, body["reason"]) == (4, "modified_file")


def test_usage_errors(tmp_path: Path, keyfiles: tuple[Path, Path]) -> None:
    key, keyring = keyfiles
    result, body = _invoke("keygen", "--publisher", "acme", "--out", str(key))
    assert result.exit_code == 2
    assert "refusing to overwrite" in body["error"]
    result, body = _invoke("new", str(tmp_path / "x"), "--id", "Bad Id", "--kind", "parser")
    assert result.exit_code == 2
    assert body["issues"]
    result, _ = _invoke("new", str(tmp_path / "x2"), "--id", "acme.ok", "--kind", "parser")
    result, body = _invoke("new", str(tmp_path / "x2"), "--id", "acme.ok", "--kind", "parser")
    assert result.exit_code == 2
    assert "not empty" in body["error"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "plugin.json").write_text("{}")
    result, body = _invoke("pack", str(broken))
    assert result.exit_code == 2
    result, body = _invoke("pack", str(tmp_path / "keyring.json").replace("keyring.json", ""))
    assert result.exit_code == 2
    (tmp_path / "not-a-key").write_text("{}")
    result, body = _invoke("sign", str(keyring), "--key", str(tmp_path / "not-a-key"))
    assert result.exit_code == 2
    other = tmp_path / "globex.key"
    _invoke("keygen", "--publisher", "globex", "--out", str(other))
    archive = tmp_path / "gold.zip"
    _invoke("pack", str(EXAMPLES / "gold-format"), "-o", str(archive))
    result, body = _invoke("sign", str(archive), "--key", str(other))
    assert (result.exit_code, body["reason"]) == (4, "publisher_mismatch")
    result, body = _invoke("verify", str(archive), "--keyring", str(tmp_path / "not-a-key"))
    assert result.exit_code == 2


def test_help_texts() -> None:
    for command in ("new", "keygen", "pack", "sign", "verify", "run"):
        result = CliRunner().invoke(cli, ["plugin", command, "--help"])
        assert result.exit_code == 0
        assert "Usage:" in result.output
