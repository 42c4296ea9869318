"""A provider plugin as signal source: tested through the plugin contract in the marketplace's sandbox."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from signalos_core.plugins import SigningKey, build_package
from tests.service.conftest import register_and_login

PAPER_BROKER = Path(__file__).resolve().parents[3] / "examples" / "plugins" / "paper-broker"


def install_paper_broker(client: TestClient[Litestar], trader: dict[str, Any]) -> None:
    author = register_and_login(client)
    key = SigningKey.generate("acme")
    created = client.post(
        "/api/marketplace/publishers", json={"name": "acme", "display_name": "Acme"}, headers=author["headers"]
    )
    assert created.status_code == 201, created.text
    keys = {"public_key": base64.b64encode(key.public_bytes).decode()}
    assert client.post("/api/marketplace/publishers/acme/keys", json=keys, headers=author["headers"]).status_code == 201
    published = client.post(
        "/api/marketplace/versions",
        content=build_package(PAPER_BROKER, key),
        headers={**author["headers"], "Content-Type": "application/octet-stream"},
    )
    assert published.status_code == 201, published.text
    account = client.post(
        "/api/trading-accounts",
        json={"name": "Demo", "broker": "Paper", "platform": "MT5", "account_size": "10000"},
        headers=trader["headers"],
    )
    assert account.status_code == 201, account.text
    install = client.post(
        "/api/marketplace/installs",
        json={"plugin_id": "acme.paper-broker", "account_id": account.json()["id"]},
        headers=trader["headers"],
    )
    assert install.status_code == 201, install.text
    activated = client.post(f"/api/marketplace/installs/{install.json()['id']}/activate", headers=trader["headers"])
    assert activated.json()["state"] == "active", activated.text


def test_provider_plugin_connection(client: TestClient[Litestar], trader: dict[str, Any]) -> None:
    def test(user: dict[str, Any], config: dict[str, str]) -> Any:
        answers = {"kind": "provider_plugin", "plugin_id": "acme.paper-broker", "config": config}
        response = client.post(
            "/api/onboarding/connections/test",
            json={"step_id": "signal_source", "answers": answers},
            headers=user["headers"],
        )
        assert response.status_code == 200, response.text
        return response.json()

    before = test(trader, {"server": "paper", "api_key": "k"})
    assert before["status"] == "error"
    assert "not installed" in before["detail"]
    install_paper_broker(client, trader)
    ok = test(trader, {"server": "paper", "api_key": "k"})
    assert ok["status"] == "ok", ok
    assert ok["latency_ms"] is not None
    assert test(trader, {"server": "live", "api_key": "k"})["status"] == "wrong_server"
    assert test(trader, {"server": "paper"})["status"] == "bad_credentials"
    # another user has no such install: the plugin is not theirs to call
    stranger = register_and_login(client)
    assert test(stranger, {"server": "paper", "api_key": "k"})["status"] == "error"
    # and the wizard step completes through the plugin; its settings are not stored
    headers = trader["headers"]
    assert (
        client.post(
            "/api/onboarding/steps/profile", json={"answers": {"display_name": "P", "timezone": "UTC"}}, headers=headers
        ).status_code
        == 200
    )
    answers = {
        "kind": "provider_plugin",
        "plugin_id": "acme.paper-broker",
        "config": {"server": "paper", "api_key": "k"},
    }
    done = client.post("/api/onboarding/steps/signal_source", json={"answers": answers}, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["step"]["answers"]["config"] == "********"
