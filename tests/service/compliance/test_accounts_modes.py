"""Trading accounts, firm profiles and compliance modes over HTTP, with every refusal (both databases)."""

from __future__ import annotations

import datetime as dt

from tests.service.compliance.conftest import ACME_YAML, INVALID_YAML, World, version_of


def test_trader_registers_and_sees_only_own_accounts(world: World) -> None:
    client = world.client
    account_id = world.own_account()
    body = client.get(f"/api/trading-accounts/{account_id}", headers=world.trader["headers"]).json()
    assert body["owner_id"] == world.trader["user_id"]
    assert body["firm_id"] is None
    assert body["account_size"] == "50000"
    assert body["status"] == "active"
    assert body["mode"] is None
    listed = client.get("/api/trading-accounts", headers=world.trader["headers"]).json()
    assert [a["id"] for a in listed] == [account_id]
    assert client.get("/api/trading-accounts", headers=world.other_trader["headers"]).json() == []
    for who in (world.other_trader, world.firm_admin, world.other_admin):
        refused = client.get(f"/api/trading-accounts/{account_id}", headers=who["headers"])
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
    assert client.get(f"/api/trading-accounts/{account_id}", headers=world.platform["headers"]).status_code == 200
    assert client.get(f"/api/trading-accounts/{account_id}").status_code == 401


def test_account_validation_and_funding_rules(world: World) -> None:
    client = world.client
    bad = client.post(
        "/api/trading-accounts",
        json={"name": "x", "broker": "b", "platform": "p", "account_size": "-5"},
        headers=world.trader["headers"],
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "account_size"
    unknown = client.post(
        "/api/trading-accounts",
        json={"name": "x", "broker": "b", "platform": "p", "account_size": "5", "leverage": 3},
        headers=world.trader["headers"],
    )
    assert unknown.status_code == 400
    # A trader cannot attach an account to a firm, nor register one for somebody else.
    for extra in ({"firm_id": world.firm_id}, {"owner_id": world.other_trader["user_id"]}):
        refused = client.post(
            "/api/trading-accounts",
            json={"name": "x", "broker": "b", "platform": "p", "account_size": "5", **extra},
            headers=world.trader["headers"],
        )
        assert refused.status_code == 403
    # Another firm's admin cannot fund accounts of this firm.
    refused = client.post(
        "/api/trading-accounts",
        json={"name": "x", "broker": "b", "platform": "p", "account_size": "5", "firm_id": world.firm_id,
              "owner_id": world.trader["user_id"]},
        headers=world.other_admin["headers"],
    )  # fmt: skip
    assert refused.status_code == 403
    funded = world.funded_account()
    by_firm = client.get(f"/api/trading-accounts?firm_id={world.firm_id}", headers=world.firm_admin["headers"]).json()
    assert [a["id"] for a in by_firm] == [funded]
    assert client.get(f"/api/trading-accounts/{funded}", headers=world.trader["headers"]).status_code == 200
    assert client.get(f"/api/trading-accounts/{funded}", headers=world.other_admin["headers"]).status_code == 404
    other = client.get(f"/api/trading-accounts?firm_id={world.firm_id}", headers=world.other_admin["headers"])
    assert other.status_code == 404


def test_firm_profile_upload_errors_and_immutability(world: World) -> None:
    client = world.client
    created = world.upload()
    assert created.status_code == 201, created.text
    version = created.json()
    assert (version["profile_id"], version["version"], version["in_use"]) == ("acme-challenge", "1", False)
    # Identical re-upload is idempotent; an unused version may be replaced.
    assert world.upload().json()["id"] == version["id"]
    replaced = world.upload(ACME_YAML.replace("Acme 100k challenge", "Acme 100k challenge (fixed)"))
    assert replaced.status_code == 201
    assert replaced.json()["title"] == "Acme 100k challenge (fixed)"
    invalid = world.upload(INVALID_YAML)
    assert invalid.status_code == 422
    problem = invalid.json()
    assert invalid.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "profile_invalid"
    by_path = {e["path"]: e for e in problem["errors"]}
    assert len(problem["errors"]) >= 2
    typo = next(e for e in problem["errors"] if e["suggestion"] == "day_boundary")
    assert (typo["line"], typo["column"]) == (4, 1)
    kind = next(e for e in problem["errors"] if "kind" in e["path"])
    assert kind["suggestion"] == "daily_loss"
    assert kind["line"] == 7
    assert by_path  # every error names its path
    garbage = world.upload("id: [unclosed")
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["line"] is not None
    # Who may upload and read: the firm's admins (and platform admins), nobody else.
    assert world.upload(who=world.trader).status_code == 404
    assert world.upload(who=world.other_admin).status_code == 404
    assert client.get(f"/api/firms/{world.firm_id}/profiles", headers=world.other_admin["headers"]).status_code == 404
    listed = client.get(f"/api/firms/{world.firm_id}/profiles", headers=world.firm_admin["headers"]).json()
    assert [(v["profile_id"], v["version"]) for v in listed] == [("acme-challenge", "1")]
    one = client.get(
        f"/api/firms/{world.firm_id}/profiles/acme-challenge/versions/1", headers=world.platform["headers"]
    ).json()
    assert "Acme 100k challenge (fixed)" in one["yaml"]
    # Once an account uses it, the version is frozen.
    account_id = world.funded_account()
    assert world.set_mode(account_id).status_code == 200
    frozen = world.upload(ACME_YAML.replace("pct: 5", "pct: 4"))
    assert frozen.status_code == 409
    assert frozen.json()["code"] == "profile_version_immutable"
    path = f"/api/firms/{world.firm_id}/profiles/acme-challenge/versions/1"
    assert client.delete(path, headers=world.firm_admin["headers"]).status_code == 409
    assert world.upload(version_of(ACME_YAML, "2")).status_code == 201
    path2 = f"/api/firms/{world.firm_id}/profiles/acme-challenge/versions/2"
    assert client.delete(path2, headers=world.firm_admin["headers"]).status_code == 204
    assert client.get(path2, headers=world.firm_admin["headers"]).status_code == 404


def test_firm_mode_only_by_that_firms_admin_with_history(world: World) -> None:
    client = world.client
    assert world.upload().status_code == 201
    account_id = world.funded_account()
    # The trader on a firm account and another firm's admin are refused.
    refused = world.set_mode(account_id, who=world.trader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "mode_forbidden"
    assert world.set_mode(account_id, who=world.other_admin).status_code == 404
    assert world.set_mode(account_id, reason="").status_code == 400  # a reason is required
    switched = world.set_mode(account_id, reason="Challenge purchased")
    assert switched.status_code == 200, switched.text
    mode = switched.json()["mode"]
    assert (mode["kind"], mode["source"], mode["profile_id"], mode["version"]) == (
        "firm",
        "firm",
        "acme-challenge",
        "1",
    )
    assert mode["params"] == {"account_size": "100000"}
    assert world.set_mode(account_id, who=world.trader, source="personal").status_code == 403
    removed = world.set_mode(account_id, profile_id=None, reason="Challenge cancelled")
    assert removed.json()["mode"] is None
    history = client.get(f"/api/trading-accounts/{account_id}/mode/history", headers=world.trader["headers"]).json()
    assert [(h["profile_id"], h["previous_profile_id"], h["reason"]) for h in history] == [
        ("acme-challenge", None, "Challenge purchased"),
        (None, "acme-challenge", "Challenge cancelled"),
    ]
    assert all(h["actor_id"] == world.firm_admin["user_id"] and h["actor_role"] == "firm_admin" for h in history)
    assert (
        client.get(
            f"/api/trading-accounts/{account_id}/mode/history", headers=world.other_trader["headers"]
        ).status_code
        == 404
    )
    audit = client.get(
        f"/api/trading-accounts/{account_id}/audit?kind=mode_change", headers=world.firm_admin["headers"]
    ).json()
    assert [(r["outcome"], r["actor"], r["reason"]) for r in audit["items"]] == [
        ("switched", world.firm_admin["user_id"], "Challenge purchased"),
        ("removed", world.firm_admin["user_id"], "Challenge cancelled"),
    ]


def test_trader_chooses_personal_mode_on_own_account(world: World) -> None:
    client = world.client
    own = world.own_account()
    personal = client.post(
        "/api/me/compliance-profiles",
        json={"yaml": ACME_YAML.replace("acme-challenge", "my-rules")},
        headers=world.trader["headers"],
    )
    assert personal.status_code == 201, personal.text
    assert personal.json()["scope"] == "personal"
    mine = client.get("/api/me/compliance-profiles", headers=world.trader["headers"]).json()
    assert [p["profile_id"] for p in mine] == ["my-rules"]
    assert client.get("/api/me/compliance-profiles", headers=world.other_trader["headers"]).json() == []
    switched = world.set_mode(own, who=world.trader, source="personal", profile_id="my-rules")
    assert switched.status_code == 200, switched.text
    assert switched.json()["mode"]["kind"] == "personal"
    # Somebody else's personal profile is invisible; firm profiles do not apply to unfunded accounts.
    assert world.set_mode(own, who=world.trader, source="personal", profile_id="not-mine").status_code == 404
    assert world.set_mode(own, who=world.trader, source="firm").status_code == 403
    assert world.set_mode(own, who=world.firm_admin, source="personal", profile_id="my-rules").status_code == 404
    assert world.set_mode(own, who=world.platform, source="personal", profile_id="my-rules").status_code == 403


def test_builtin_profiles_listed_and_usable(world: World) -> None:
    client = world.client
    listed = client.get("/api/compliance/builtin-profiles", headers=world.trader["headers"])
    assert listed.status_code == 200
    profiles = listed.json()
    assert client.get("/api/compliance/builtin-profiles").status_code == 401
    own = world.own_account()
    unknown = world.set_mode(own, who=world.trader, source="builtin", profile_id="no-such-profile")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "profile_not_found"
    if not profiles:  # the shipped rulesets are another area's; nothing more to check without them
        return
    regulatory = [p for p in profiles if p["kind"] == "regulatory"] or profiles
    chosen = regulatory[0]
    switched = world.set_mode(own, who=world.trader, source="builtin", profile_id=chosen["profile_id"])
    assert switched.status_code == 200, switched.text
    assert switched.json()["mode"]["kind"] in ("regulatory", "personal")
    wrong = world.set_mode(own, who=world.trader, source="builtin", profile_id=chosen["profile_id"], version="0-nope")
    assert wrong.status_code == 404


def test_effective_from_is_honoured(world: World) -> None:
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    text = version_of(ACME_YAML, "2", **{"effective_from: 2026-01-01": f"effective_from: {future}"})
    assert world.upload().status_code == 201
    assert world.upload(text).status_code == 201
    account_id = world.funded_account()
    early = world.set_mode(account_id, version="2")
    assert early.status_code == 422
    assert early.json()["code"] == "profile_not_effective"
    assert early.json()["effective_from"] == future
    # Without a version the newest version in effect today is chosen.
    assert world.set_mode(account_id).json()["mode"]["version"] == "1"


def test_every_account_endpoint_hides_the_account_from_outsiders(world: World) -> None:
    client = world.client
    account_id = world.acme_account()
    base = f"/api/trading-accounts/{account_id}"
    order = {"symbol": "EURUSD", "side": "buy", "size": "1", "at": "2026-05-12T09:00:00Z"}
    calls = [
        ("GET", base, None),
        ("GET", f"{base}/mode/history", None),
        ("PUT", f"{base}/mode", {"source": "firm", "profile_id": "acme-challenge", "reason": "takeover"}),
        ("POST", f"{base}/orders/check", order),
        ("POST", f"{base}/feed", {"events": [{"type": "equity_update", "at": "2026-05-12T09:00:00Z", "equity": "1"}]}),
        ("POST", f"{base}/reset", {"reason": "let me trade"}),
        ("GET", f"{base}/status", None),
        ("POST", f"{base}/dry-run", {"source": "firm", "profile_id": "acme-challenge"}),
        ("GET", f"{base}/audit", None),
        ("GET", f"{base}/audit/export", None),
        ("GET", f"{base}/audit/verify", None),
        ("GET", f"{base}/reports/daily", None),
        ("GET", f"{base}/reports/daily.html", None),
    ]
    for who in (world.other_trader, world.other_admin):
        for method, url, body in calls:
            response = client.request(method, url, json=body, headers=who["headers"])
            assert response.status_code == 404, (method, url, response.status_code)
            assert response.json()["code"] == "not_found"
    firm_calls = [
        ("GET", f"/api/firms/{world.firm_id}/profiles"),
        ("GET", f"/api/firms/{world.firm_id}/profiles/acme-challenge/versions/1"),
        ("DELETE", f"/api/firms/{world.firm_id}/profiles/acme-challenge/versions/1"),
        ("GET", f"/api/firms/{world.firm_id}/compliance/report"),
        ("GET", f"/api/firms/{world.firm_id}/compliance/audit/verify"),
    ]
    for who in (world.trader, world.other_admin):
        for method, url in firm_calls:
            assert client.request(method, url, headers=who["headers"]).status_code == 404, (method, url)
    # Nothing an outsider sent reached the account's audit chain.
    records = client.get(f"{base}/audit", headers=world.firm_admin["headers"]).json()["items"]
    assert [r["kind"] for r in records] == ["mode_change"]
