"""`signalos marketplace` against a real server on loopback: publish, search, show, install + activate."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from service.cli.main import cli
from signalos_core.plugins import SigningKey
from tests.service.conftest import TEST_PASSWORD
from tests.service.marketplace.test_marketplace import make_package


def _login(url: str, email: str) -> str:
    httpx.post(f"{url}/api/auth/register", json={"email": email, "password": TEST_PASSWORD}).raise_for_status()
    response = httpx.post(f"{url}/api/auth/login", json={"email": email, "password": TEST_PASSWORD})
    return str(response.json()["access_token"])


def test_publish_search_install_over_cli(live_server: str, tmp_path: Path) -> None:
    runner = CliRunner()
    author = _login(live_server, "author@example.com")
    key = SigningKey.generate("acme")
    auth = {"Authorization": f"Bearer {author}"}
    httpx.post(
        f"{live_server}/api/marketplace/publishers", json={"name": "acme", "display_name": "Acme"}, headers=auth
    ).raise_for_status()
    httpx.post(
        f"{live_server}/api/marketplace/publishers/acme/keys",
        json={"public_key": base64.b64encode(key.public_bytes).decode()},
        headers=auth,
    ).raise_for_status()
    package = tmp_path / "gold.zip"
    package.write_bytes(make_package(tmp_path, key, "1.0.0"))

    base = ["marketplace", "--url", live_server, "--token", author]
    published = runner.invoke(cli, [*base, "publish", str(package)])
    assert published.exit_code == 0, published.output
    assert json.loads(published.output)["version"] == "1.0.0"
    again = runner.invoke(cli, [*base, "publish", str(package)])
    assert again.exit_code == 4
    assert json.loads(again.output)["code"] == "version_exists"

    trader = _login(live_server, "trader@example.com")
    account = httpx.post(
        f"{live_server}/api/trading-accounts",
        json={"name": "Demo", "broker": "Paper", "platform": "MT5", "account_size": "1000"},
        headers={"Authorization": f"Bearer {trader}"},
    ).json()["id"]
    base = ["marketplace", "--url", live_server, "--token", trader]
    found = json.loads(runner.invoke(cli, [*base, "search", "gold", "--kind", "parser"]).output)
    assert [p["plugin_id"] for p in found] == ["acme.gold-format"]
    shown = json.loads(runner.invoke(cli, [*base, "show", "acme.gold-format"]).output)
    assert shown["versions"][0]["version"] == "1.0.0"
    installed = runner.invoke(cli, [*base, "install", "acme.gold-format", "--account", account])
    assert installed.exit_code == 0, installed.output
    assert json.loads(installed.output)["state"] == "active"


def test_unreachable_server_exit_code() -> None:
    result = CliRunner().invoke(cli, ["marketplace", "--url", "http://127.0.0.1:9", "search"])
    assert result.exit_code == 6
    assert json.loads(result.output)["error"] == "unreachable"
