"""Firm-added steps, per-user progress and funnels; every endpoint refuses the wrong user, role or firm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.service.conftest import promote, register_and_login
from tests.service.onboarding.conftest import VerifyEmail

KYC_STEP = {
    "id": "firm_kyc",
    "title": "Identity check",
    "description": "Your firm needs your ID number before you trade.",
    "form": {
        "type": "object",
        "additionalProperties": False,
        "required": ["document_number"],
        "properties": {"document_number": {"type": "string", "minLength": 5, "maxLength": 20}},
    },
    "depends_on": ["profile"],
}


@pytest.fixture
def world(client: TestClient[Litestar], db_url: str) -> dict[str, Any]:
    """Two firms, each with an admin and a trader, and a platform admin."""
    root = register_and_login(client)
    promote(db_url, root["user_id"], "platform_admin")
    firms = {}
    for name, require in (("Acme Funding", False), ("Strict Capital", True)):
        response = client.post("/api/admin/firms", json={"name": name, "require_2fa": require}, headers=root["headers"])
        assert response.status_code == 201, response.text
        firms[name] = response.json()["id"]
    people: dict[str, Any] = {"root": root, "firms": firms}
    for key, firm in (("acme", "Acme Funding"), ("strict", "Strict Capital")):
        admin = register_and_login(client)
        promote(db_url, admin["user_id"], "firm_admin", firms[firm])
        trader = register_and_login(client)
        promote(db_url, trader["user_id"], "trader", firms[firm])
        people[f"{key}_admin"], people[f"{key}_trader"] = admin, trader
    return people


def test_firm_adds_a_required_step(client: TestClient[Litestar], world: dict[str, Any]) -> None:
    acme = world["firms"]["Acme Funding"]
    admin, trader = world["acme_admin"]["headers"], world["acme_trader"]["headers"]
    added = client.post(f"/api/onboarding/admin/firms/{acme}/steps", json=KYC_STEP, headers=admin)
    assert added.status_code == 201, added.text
    assert added.json()["position"] == 0
    listed = client.get(f"/api/onboarding/admin/firms/{acme}/steps", headers=admin).json()
    assert [s["id"] for s in listed] == ["firm_kyc"]

    workflow = client.get("/api/onboarding/workflow", headers=trader).json()
    ids = [s["id"] for s in workflow["steps"]]
    assert ids[-2:] == ["firm_kyc", "done"]
    assert workflow["steps"][-2]["form"] == KYC_STEP["form"]
    state = client.get("/api/onboarding", headers=trader).json()
    kyc = next(s for s in state["steps"] if s["id"] == "firm_kyc")
    assert kyc["required"] is True
    assert kyc["origin"] == "firm"
    assert kyc["blocked_by"] == ["profile"]
    assert "firm_kyc" in next(s for s in state["steps"] if s["id"] == "done")["blocked_by"]

    profile = {"display_name": "Tom", "timezone": "UTC"}
    assert client.post("/api/onboarding/steps/profile", json={"answers": profile}, headers=trader).status_code == 200
    skip = client.post("/api/onboarding/steps/firm_kyc/skip", headers=trader)
    assert skip.status_code == 409
    bad = client.post("/api/onboarding/steps/firm_kyc", json={"answers": {"document_number": "1"}}, headers=trader)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "document_number"
    ok = client.post(
        "/api/onboarding/steps/firm_kyc", json={"answers": {"document_number": "X1234567"}}, headers=trader
    )
    assert ok.status_code == 200
    assert ok.json()["step"]["status"] == "completed"

    # other firms' traders do not see it
    other = client.get("/api/onboarding/workflow", headers=world["strict_trader"]["headers"]).json()
    assert "firm_kyc" not in [s["id"] for s in other["steps"]]

    # duplicates and invalid definitions are refused, naming the problems
    again = client.post(f"/api/onboarding/admin/firms/{acme}/steps", json=KYC_STEP, headers=admin)
    assert again.status_code == 422
    assert any("already exists" in issue for issue in again.json()["issues"])
    broken = client.post(
        f"/api/onboarding/admin/firms/{acme}/steps",
        json={**KYC_STEP, "id": "firm_broken", "form": {"type": "object", "properties": {"x": {"type": "nope"}}}},
        headers=admin,
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "onboarding_invalid_step"
    clash = client.post(f"/api/onboarding/admin/firms/{acme}/steps", json={**KYC_STEP, "id": "broker"}, headers=admin)
    assert clash.status_code == 422

    # a dependent step blocks removal of the one it depends on
    rules = {"id": "firm_rules", "title": "Rules", "form": {"type": "object"}, "depends_on": ["firm_kyc"]}
    assert client.post(f"/api/onboarding/admin/firms/{acme}/steps", json=rules, headers=admin).status_code == 201
    assert client.delete(f"/api/onboarding/admin/firms/{acme}/steps/firm_kyc", headers=admin).status_code == 409
    assert client.delete(f"/api/onboarding/admin/firms/{acme}/steps/firm_rules", headers=admin).status_code == 204
    assert client.delete(f"/api/onboarding/admin/firms/{acme}/steps/firm_rules", headers=admin).status_code == 404
    root = world["root"]["headers"]
    assert client.delete(f"/api/onboarding/admin/firms/{acme}/steps/firm_kyc", headers=root).status_code == 204
    assert client.get(f"/api/onboarding/admin/firms/{acme}/steps", headers=admin).json() == []


def test_firm_requiring_2fa(client: TestClient[Litestar], world: dict[str, Any], verify_email: VerifyEmail) -> None:
    trader = world["strict_trader"]["headers"]
    verify_email(world["strict_trader"])
    for step, answers in (("profile", {"display_name": "S", "timezone": "UTC"}), ("verify_email", {})):
        assert (
            client.post(f"/api/onboarding/steps/{step}", json={"answers": answers}, headers=trader).status_code == 200
        )
    state = client.get("/api/onboarding", headers=trader).json()
    two_factor = next(s for s in state["steps"] if s["id"] == "enable_2fa")
    assert two_factor["required"] is True
    skip = client.post("/api/onboarding/steps/enable_2fa/skip", headers=trader)
    assert skip.status_code == 409
    assert "firm requires" in skip.json()["detail"]
    # the 2FA area is installed, so the real enrolment is read: a code alone is not accepted
    claimed = client.post("/api/onboarding/steps/enable_2fa", json={"answers": {"code": "123456"}}, headers=trader)
    assert claimed.status_code == 409
    assert claimed.json()["code"] == "onboarding_fact_missing"


def test_progress_and_funnels(client: TestClient[Litestar], world: dict[str, Any]) -> None:
    acme = world["firms"]["Acme Funding"]
    trader = world["acme_trader"]
    profile = {"display_name": "Tom", "timezone": "UTC"}
    client.post("/api/onboarding/steps/profile", json={"answers": profile}, headers=trader["headers"])
    client.get("/api/onboarding", headers=world["strict_trader"]["headers"])

    own = client.get("/api/onboarding/progress", headers=trader["headers"]).json()
    assert own["progress_percent"] == 100 // 9
    assert own["current_step"] == "verify_email"
    admin = world["acme_admin"]["headers"]
    seen = client.get(f"/api/onboarding/admin/users/{trader['user_id']}/progress", headers=admin)
    assert seen.status_code == 200
    assert seen.json() == {**own, "last_activity_at": seen.json()["last_activity_at"]}

    funnel = client.get(f"/api/onboarding/admin/firms/{acme}/funnel", headers=admin).json()
    assert funnel["users"] == 1
    steps = {s["step_id"]: s for s in funnel["steps"]}
    assert steps["profile"] == {**steps["profile"], "reached": 1, "completed": 1, "dropped_off": 0}
    assert steps["verify_email"]["dropped_off"] == 1
    assert steps["broker"]["reached"] == 1  # only profile gates it
    assert steps["compliance"]["reached"] == 0
    assert steps["profile"]["median_time_spent_s"] is not None

    platform = client.get("/api/onboarding/admin/funnel", headers=world["root"]["headers"]).json()
    assert platform["scope"] == "platform"
    assert platform["users"] == 2
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = client.get("/api/onboarding/admin/funnel", params={"since": future}, headers=world["root"]["headers"])
    assert empty.status_code == 422  # since after until (now)
    window = client.get(
        "/api/onboarding/admin/funnel",
        params={"since": "2020-01-01T00:00:00+00:00", "until": "2020-02-01T00:00:00+00:00"},
        headers=world["root"]["headers"],
    ).json()
    assert window["users"] == 0
    naive = client.get(
        "/api/onboarding/admin/funnel", params={"since": "2020-01-01T00:00:00"}, headers=world["root"]["headers"]
    )
    assert naive.status_code == 400, naive.text  # not RFC 3339 (no offset): malformed
    assert naive.json()["errors"][0]["field"] == "since"


def test_refusals(client: TestClient[Litestar], world: dict[str, Any]) -> None:
    acme, strict = world["firms"]["Acme Funding"], world["firms"]["Strict Capital"]
    acme_admin, trader = world["acme_admin"]["headers"], world["acme_trader"]["headers"]
    strict_trader_id = world["strict_trader"]["user_id"]
    client.get("/api/onboarding", headers=world["strict_trader"]["headers"])
    firm_paths = [
        ("get", "/api/onboarding/admin/firms/{firm}/steps", None),
        ("post", "/api/onboarding/admin/firms/{firm}/steps", KYC_STEP),
        ("delete", "/api/onboarding/admin/firms/{firm}/steps/firm_kyc", None),
        ("get", "/api/onboarding/admin/firms/{firm}/funnel", None),
    ]
    for method, template, body in firm_paths:
        # another firm's admin: 403
        kwargs: dict[str, Any] = {"headers": acme_admin}
        if body is not None:
            kwargs["json"] = body
        response = getattr(client, method)(template.format(firm=strict), **kwargs)
        assert response.status_code == 403, (method, template, response.text)
        # a trader: 403 (role)
        response = getattr(client, method)(template.format(firm=acme), **{**kwargs, "headers": trader})
        assert response.status_code == 403, (method, template)
        # nobody: 401
        response = getattr(client, method)(
            template.format(firm=acme), **{k: v for k, v in kwargs.items() if k != "headers"}
        )
        assert response.status_code == 401
    # a user of another firm is invisible to a firm admin; traders cannot look at anyone
    assert client.get(f"/api/onboarding/admin/users/{strict_trader_id}/progress", headers=acme_admin).status_code == 404
    assert client.get(f"/api/onboarding/admin/users/{strict_trader_id}/progress", headers=trader).status_code == 403
    # the platform funnel is for platform admins only
    assert client.get("/api/onboarding/admin/funnel", headers=acme_admin).status_code == 403
    assert client.get("/api/onboarding/admin/funnel", headers=trader).status_code == 403
    # a platform admin reaches every firm; unknown firms are 404
    root = world["root"]["headers"]
    assert client.get(f"/api/onboarding/admin/firms/{strict}/steps", headers=root).status_code == 200
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/api/onboarding/admin/firms/{unknown}/steps", headers=root).status_code == 404
    assert client.get(f"/api/onboarding/admin/users/{unknown}/progress", headers=root).status_code == 404
    # a user who never opened onboarding has no progress yet
    assert (
        client.get(f"/api/onboarding/admin/users/{world['acme_admin']['user_id']}/progress", headers=root).status_code
        == 404
    )
    # the caller's own endpoints need a login
    for method, path in (
        ("get", "/api/onboarding"),
        ("get", "/api/onboarding/workflow"),
        ("get", "/api/onboarding/progress"),
        ("post", "/api/onboarding/steps/profile"),
        ("post", "/api/onboarding/steps/enable_2fa/skip"),
        ("post", "/api/onboarding/connections/test"),
    ):
        assert getattr(client, method)(path).status_code == 401, path


def test_real_2fa_enrolment_completes_the_step(
    client: TestClient[Litestar], world: dict[str, Any], verify_email: VerifyEmail
) -> None:
    import pyotp

    trader = world["strict_trader"]["headers"]
    verify_email(world["strict_trader"])
    for step, answers in (("profile", {"display_name": "S", "timezone": "UTC"}), ("verify_email", {})):
        assert (
            client.post(f"/api/onboarding/steps/{step}", json={"answers": answers}, headers=trader).status_code == 200
        )
    setup = client.post("/api/2fa/totp/setup", json={}, headers=trader)
    assert setup.status_code == 200, setup.text
    code = pyotp.TOTP(setup.json()["secret"]).now()
    enabled = client.post("/api/2fa/totp/enable", json={"code": code}, headers=trader)
    assert enabled.status_code == 200, enabled.text
    headers = {"Authorization": f"Bearer {enabled.json()['access_token']}"}
    state = client.get("/api/onboarding", headers=headers).json()
    two_factor = next(s for s in state["steps"] if s["id"] == "enable_2fa")
    assert two_factor["status"] == "completed"
    assert two_factor["verified_by"] == "server_state"
    assert two_factor["note"] is None
