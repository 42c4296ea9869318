"""Marketplace end to end over HTTP: author → sign → publish → discover → install → activate → run sandboxed →
update → rollback → remove, with moderation and refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from signalos_core import PackageVerificationError
from signalos_core.plugins import SigningKey, build_package
from tests.service.conftest import promote, register_and_login

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "plugins" / "gold-format"


def make_package(tmp_path: Path, key: SigningKey, version: str, *, self_test_ok: bool = True) -> bytes:
    folder = tmp_path / f"gold-{version}"
    shutil.copytree(EXAMPLE, folder)
    manifest = json.loads((folder / "plugin.json").read_text())
    manifest["version"] = version
    (folder / "plugin.json").write_text(json.dumps(manifest))
    if not self_test_ok:
        code = (
            (folder / "gold_format.py")
            .read_text()
            .replace('return parsed is not None and parsed["stop_loss"] == "2340"', "return False")
        )
        (folder / "gold_format.py").write_text(code)
    return build_package(folder, key)


def tamper(package: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith(".py"):
                data += b"\nimport os  # injected\n"
            target.writestr(item, data)
    return out.getvalue()


def publish(client: TestClient[Litestar], headers: dict[str, str], package: bytes) -> Any:
    return client.post(
        "/api/marketplace/versions", content=package, headers={**headers, "Content-Type": "application/octet-stream"}
    )


@pytest.fixture
def author(client: TestClient[Litestar]) -> dict[str, Any]:
    user = register_and_login(client)
    key = SigningKey.generate("acme")
    assert (
        client.post(
            "/api/marketplace/publishers",
            json={"name": "acme", "display_name": "Acme Signals"},
            headers=user["headers"],
        ).status_code
        == 201
    )
    added = client.post(
        "/api/marketplace/publishers/acme/keys",
        json={"public_key": base64.b64encode(key.public_bytes).decode()},
        headers=user["headers"],
    )
    assert added.status_code == 201, added.text
    assert added.json()["key_id"] == key.key_id
    return {**user, "key": key}


def test_end_to_end(client: TestClient[Litestar], author: dict[str, Any], tmp_path: Path, db_url: str) -> None:
    key: SigningKey = author["key"]
    v100, v110, v120_broken = (
        make_package(tmp_path, key, v, self_test_ok=v != "1.2.0") for v in ("1.0.0", "1.1.0", "1.2.0")
    )

    published = publish(client, author["headers"], v100)
    assert published.status_code == 201, published.text
    assert published.json()["plugin_id"] == "acme.gold-format"
    assert publish(client, author["headers"], v100).json()["code"] == "version_exists"
    rejected = publish(client, author["headers"], tamper(v110))
    assert rejected.status_code == 422
    assert rejected.json()["code"] == "package_rejected"
    assert rejected.json()["reason"] in {"modified_file", "bad_signature"}
    assert publish(client, author["headers"], b"not a zip").json()["code"] == "package_rejected"

    # Somebody else cannot publish under acme's name, even with acme's package bytes.
    intruder = register_and_login(client)
    assert publish(client, intruder["headers"], v110).status_code == 404

    # Discover.
    trader = register_and_login(client)
    hits = client.get("/api/marketplace/plugins?q=gold&kind=parser&compatible=true", headers=trader["headers"]).json()
    assert [h["plugin_id"] for h in hits] == ["acme.gold-format"]
    assert client.get("/api/marketplace/plugins?kind=strategy", headers=trader["headers"]).json() == []
    detail = client.get("/api/marketplace/plugins/acme.gold-format", headers=trader["headers"]).json()
    assert detail["versions"][0]["permissions"]["network"] == []
    assert detail["versions"][0]["compatible"] is True

    # Rating needs an install.
    assert (
        client.put(
            "/api/marketplace/plugins/acme.gold-format/rating", json={"stars": 5}, headers=trader["headers"]
        ).json()["code"]
        == "not_installed"
    )

    account = client.post(
        "/api/trading-accounts",
        json={"name": "Demo", "broker": "Paper", "platform": "MT5", "account_size": "10000"},
        headers=trader["headers"],
    )
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    installed = client.post(
        "/api/marketplace/installs",
        json={"plugin_id": "acme.gold-format", "account_id": account_id},
        headers=trader["headers"],
    )
    assert installed.status_code == 201, installed.text
    install = installed.json()
    assert (install["state"], install["version"]) == ("verified", "1.0.0")
    assert (
        client.post(
            "/api/marketplace/installs",
            json={"plugin_id": "acme.gold-format", "account_id": account_id},
            headers=trader["headers"],
        ).status_code
        == 409
    )

    # Other users cannot touch this install or install on this account.
    base = f"/api/marketplace/installs/{install['id']}"
    assert client.post(f"{base}/activate", headers=intruder["headers"]).status_code == 404
    assert (
        client.post(
            "/api/marketplace/installs",
            json={"plugin_id": "acme.gold-format", "account_id": account_id},
            headers=intruder["headers"],
        ).status_code
        == 404
    )

    active = client.post(f"{base}/activate", headers=trader["headers"]).json()
    assert active["state"] == "active", active
    call = client.post(
        f"{base}/call",
        json={"method": "parse", "payload": {"text": "XAUUSD BUY @ 2350\nSL: 2340\nTP1: 2360"}},
        headers=trader["headers"],
    )
    assert call.status_code == 200, call.text
    assert call.json()["result"]["stop_loss"] == "2340"

    rated = client.put(
        "/api/marketplace/plugins/acme.gold-format/rating",
        json={"stars": 4, "review": "works"},
        headers=trader["headers"],
    ).json()
    assert rated["version"] == "1.0.0"

    # Update to 1.1.0, then a broken 1.2.0 that is rolled back automatically.
    assert publish(client, author["headers"], v110).status_code == 201
    updated = client.post(f"{base}/update", json={}, headers=trader["headers"]).json()
    assert (updated["state"], updated["version"], updated["previous_version"]) == ("active", "1.1.0", "1.0.0")
    assert publish(client, author["headers"], v120_broken).status_code == 201
    failed = client.post(f"{base}/update", json={"version": "1.2.0"}, headers=trader["headers"])
    assert failed.status_code == 422
    assert failed.json()["reason"] == "self_test_failed"
    after = client.get(base, headers=trader["headers"]).json()
    assert (after["state"], after["version"]) == ("active", "1.1.0")
    assert "rolled back" in after["reason"]
    assert (
        client.post(
            f"{base}/call",
            json={"method": "parse", "payload": {"text": "XAUUSD SELL\nSL: 1\nTP: 0.5"}},
            headers=trader["headers"],
        ).json()["result"]["side"]
        == "sell"
    )

    # Moderation is for platform admins only.
    admin = register_and_login(client)
    promote(db_url, admin["user_id"], "platform_admin")
    yank_path = "/api/marketplace/moderation/plugins/acme.gold-format/versions/1.0.0/yank"
    assert client.post(yank_path, json={"reason": "bug"}, headers=trader["headers"]).status_code == 403
    assert client.post(yank_path, json={"reason": "bug"}, headers=admin["headers"]).json()["yanked"] is True
    assert (
        client.post("/api/marketplace/moderation/publishers/acme/verify", headers=admin["headers"]).json()["verified"]
        is True
    )

    other_account = client.post(
        "/api/trading-accounts",
        json={"name": "Second", "broker": "Paper", "platform": "MT5", "account_size": "5000"},
        headers=trader["headers"],
    ).json()["id"]
    yanked = client.post(
        "/api/marketplace/installs",
        json={"plugin_id": "acme.gold-format", "account_id": other_account, "version": "1.0.0"},
        headers=trader["headers"],
    )
    assert yanked.json()["code"] == "plugin_unavailable"

    # Revoking the key: nothing signed by it installs or starts any more.
    assert (
        client.post(
            f"/api/marketplace/moderation/keys/{key.key_id}/revoke", json={"reason": "leaked"}, headers=admin["headers"]
        ).status_code
        == 200
    )
    refused = client.post(
        "/api/marketplace/installs",
        json={"plugin_id": "acme.gold-format", "account_id": other_account},
        headers=trader["headers"],
    )
    assert refused.json()["reason"] == "revoked_key"
    assert client.post(f"{base}/deactivate", headers=trader["headers"]).json()["state"] == "inactive"
    restart = client.post(f"{base}/activate", headers=trader["headers"])
    assert restart.json()["reason"] == "revoked_key"

    removed = client.post(f"{base}/remove", headers=trader["headers"]).json()
    assert removed["state"] == "removed"
    assert client.get("/api/marketplace/installs", headers=trader["headers"]).json() == []

    delisted = client.post(
        "/api/marketplace/moderation/plugins/acme.gold-format/delist",
        json={"reason": "abuse"},
        headers=admin["headers"],
    )
    assert delisted.json()["delisted"] is True
    assert client.get("/api/marketplace/plugins", headers=trader["headers"]).json() == []


def test_plugin_ids_cannot_be_squatted(client: TestClient[Litestar], author: dict[str, Any], tmp_path: Path) -> None:
    assert publish(client, author["headers"], make_package(tmp_path, author["key"], "1.0.0")).status_code == 201
    squatter = register_and_login(client)
    # The publisher name is taken...
    assert (
        client.post(
            "/api/marketplace/publishers", json={"name": "acme", "display_name": "Fake"}, headers=squatter["headers"]
        ).status_code
        == 409
    )
    # ...and a manifest may only use ids in its own publisher's namespace.
    key = SigningKey.generate("squat")
    client.post(
        "/api/marketplace/publishers", json={"name": "squat", "display_name": "Squatter"}, headers=squatter["headers"]
    )
    client.post(
        "/api/marketplace/publishers/squat/keys",
        json={"public_key": base64.b64encode(key.public_bytes).decode()},
        headers=squatter["headers"],
    )
    folder = tmp_path / "squat"
    shutil.copytree(EXAMPLE, folder)
    manifest = json.loads((folder / "plugin.json").read_text())
    manifest.update(publisher="squat", version="9.0.0")
    (folder / "plugin.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageVerificationError):
        build_package(folder, key)
    # A package signed with acme's real key but uploaded by someone else is refused too.
    assert publish(client, squatter["headers"], make_package(tmp_path / "x", author["key"], "2.0.0")).status_code == 404


def test_keys_and_publishers_validation(client: TestClient[Litestar], author: dict[str, Any]) -> None:
    bad = client.post("/api/marketplace/publishers/acme/keys", json={"public_key": "A" * 44}, headers=author["headers"])
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "public_key"
    dup = client.post(
        "/api/marketplace/publishers", json={"name": "acme", "display_name": "again"}, headers=author["headers"]
    )
    assert dup.status_code == 409
    keys = client.get("/api/marketplace/publishers/acme/keys", headers=author["headers"]).json()
    assert len(keys) == 1
    assert keys[0]["revoked_at"] is None
    assert (
        client.get(
            "/api/marketplace/plugins",
        ).status_code
        == 401
    )
    assert client.get("/api/marketplace/plugins/nope", headers=author["headers"]).status_code == 404


def test_search_pages_after_the_compatibility_filter(
    client: TestClient[Litestar], author: dict[str, Any], tmp_path: Path, db_url: str
) -> None:
    key: SigningKey = author["key"]
    for name in ("alpha", "bravo", "charlie", "delta"):
        folder = tmp_path / name
        shutil.copytree(EXAMPLE, folder)
        manifest = json.loads((folder / "plugin.json").read_text())
        manifest["id"] = f"acme.{name}"
        (folder / "plugin.json").write_text(json.dumps(manifest))
        assert publish(client, author["headers"], build_package(folder, key)).status_code == 201
    admin = register_and_login(client)
    promote(db_url, admin["user_id"], "platform_admin")
    yanked = client.post(
        "/api/marketplace/moderation/plugins/acme.bravo/versions/1.0.0/yank",
        json={"reason": "bug"},
        headers=admin["headers"],
    )
    assert yanked.status_code == 200, yanked.text

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/marketplace/plugins?sort=updated&{query}", headers=author["headers"])
        assert response.status_code == 200, response.text
        return sorted(hit["plugin_id"] for hit in response.json())

    everything = ["acme.alpha", "acme.bravo", "acme.charlie", "acme.delta"]
    assert ids("limit=10") == everything
    assert ids("compatible=true&limit=10") == ["acme.alpha", "acme.charlie", "acme.delta"]
    # Pages are cut from the installable plugins only: three of them, two per page.
    first, second = ids("compatible=true&limit=2&offset=0"), ids("compatible=true&limit=2&offset=2")
    assert (len(first), len(second)) == (2, 1)
    assert sorted(first + second) == ["acme.alpha", "acme.charlie", "acme.delta"]
    # Without the filter the database pages: four plugins, two per page.
    assert sorted(ids("limit=2&offset=0") + ids("limit=2&offset=2")) == everything


@pytest.mark.parametrize("offset", [str(2**63), str(2**64 + 1), "-1"])
def test_a_search_offset_past_64_bits_is_refused_naming_offset(
    client: TestClient[Litestar], author: dict[str, Any], offset: str
) -> None:
    """The database pages with a 64-bit OFFSET: larger is a 400 naming it (it was a 500 from the driver)."""
    response = client.get("/api/marketplace/plugins", params={"offset": offset}, headers=author["headers"])
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    assert [e["field"] for e in response.json()["errors"]] == ["offset"]
    largest = client.get("/api/marketplace/plugins", params={"offset": str(2**63 - 1)}, headers=author["headers"])
    assert largest.status_code == 200, largest.text
    assert largest.json() == []
    parameters = client.get("/schema/openapi.json").json()["paths"]["/api/marketplace/plugins"]["get"]["parameters"]
    assert next(p for p in parameters if p["name"] == "offset")["schema"]["maximum"] == 2**63 - 1
