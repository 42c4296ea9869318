"""End to end over HTTP: a new user completes the whole flow against local servers; resume; idempotency."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from service.app import create_app
from service.onboarding.services import OnboardingRuntime, configure_onboarding
from service.settings import Settings
from tests.core.onboarding.conftest import (
    BRIDGE_LOGIN,
    BRIDGE_PASSWORD,
    BRIDGE_SERVER,
    DNS_FAILURE_HOST,
    TELEGRAM_TOKEN,
    LoopbackServers,
)
from tests.service.onboarding.conftest import VerifyEmail

PROFILE = {"display_name": "Alice", "timezone": "Europe/London", "experience": "intermediate"}
SOURCE = {"kind": "telegram", "channel": "@signals_room", "bot_token": TELEGRAM_TOKEN}
COMPLIANCE = {"mode": "prop_firm", "profile_id": "ftmo-2step-challenge", "account_size": "100000"}
RISK = {"lot_sizing": "fixed", "fixed_lots": "0.10", "max_lots": "1.00", "daily_loss_limit": "5000.00"}
TRADE = {"symbol": "EURUSD", "side": "buy", "lots": "0.10", "price": "1.08512"}


def bridge(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "mt_bridge",
        "host": "127.0.0.1",
        "port": port,
        "platform": "mt5",
        "login": BRIDGE_LOGIN,
        "password": BRIDGE_PASSWORD,
        "server": BRIDGE_SERVER,
        "expected_account_type": "demo",
        **extra,
    }


def submit(client: TestClient[Litestar], headers: dict[str, str], step: str, answers: Any, **kw: Any) -> Any:
    return client.post(f"/api/onboarding/steps/{step}", json={"answers": answers}, headers={**headers, **kw})


def step_of(state: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in state["steps"] if s["id"] == step_id)


def test_new_user_completes_the_whole_flow(
    client: TestClient[Litestar], trader: dict[str, Any], loopback: LoopbackServers, verify_email: VerifyEmail
) -> None:
    headers = trader["headers"]
    state = client.get("/api/onboarding", headers=headers).json()
    assert state["progress_percent"] == 0
    assert state["current_step"] == "profile"
    assert step_of(state, "broker")["blocked_by"] == ["profile"]
    assert step_of(state, "profile")["suggested"]["timezone"] == "UTC"

    assert submit(client, headers, "profile", PROFILE).status_code == 200
    # the server knows whether the address is verified: a code typed into the wizard proves nothing
    unverified = submit(client, headers, "verify_email", {"code": "483920"})
    assert unverified.status_code == 409
    assert unverified.json()["code"] == "onboarding_fact_missing"
    verify_email(trader)  # POST /api/me/email/verification, then /api/me/email/verify with the emailed code
    email = step_of(client.get("/api/onboarding", headers=headers).json(), "verify_email")
    assert email["status"] == "completed"
    assert email["verified_by"] == "server_state"
    assert email["note"] is None
    skipped = client.post("/api/onboarding/steps/enable_2fa/skip", headers=headers)
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["step"]["status"] == "skipped"

    source = submit(client, headers, "signal_source", SOURCE).json()
    assert source["diagnosis"]["status"] == "ok"
    assert source["step"]["answers"]["bot_token"] == "********"

    # a failing broker first: refused, with a hint; nothing stored
    refused = submit(client, headers, "broker", bridge(loopback.closed_port()))
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "onboarding_connection_failed"
    assert problem["diagnosis"]["status"] == "refused"
    assert problem["diagnosis"]["hint"]
    assert refused.headers["content-type"].startswith("application/problem+json")
    broker = submit(client, headers, "broker", bridge(loopback.bridge()))
    assert broker.status_code == 200, broker.text
    body = broker.json()
    assert body["diagnosis"]["status"] == "ok"
    assert body["diagnosis"]["latency_ms"] > 0
    assert body["step"]["answers"]["password"] == "********"
    assert BRIDGE_PASSWORD not in broker.text

    compliance = client.get("/api/onboarding", headers=headers).json()
    assert step_of(compliance, "compliance")["status"] == "available"
    assert submit(client, headers, "compliance", COMPLIANCE).status_code == 200
    risk_state = client.get("/api/onboarding", headers=headers).json()
    assert step_of(risk_state, "risk_settings")["suggested"]["max_lots"] == "1.00"
    assert step_of(risk_state, "risk_settings")["suggested"]["daily_loss_limit"] == "5000.00"
    assert submit(client, headers, "risk_settings", RISK).status_code == 200
    trade = submit(client, headers, "paper_test_trade", TRADE).json()
    assert trade["step"]["result"]["status"] == "closed"
    done = submit(client, headers, "done", {})
    assert done.status_code == 200, done.text
    final = done.json()["state"]
    assert final["completed"] is True
    assert final["progress_percent"] == 100
    assert final["completed_at"] is not None

    progress = client.get("/api/onboarding/progress", headers=headers).json()
    assert progress["completed"] is True
    assert progress["total_time_s"] >= 0
    assert {s["id"] for s in progress["steps"] if s["time_spent_s"] is not None} >= {"profile", "broker", "done"}


def test_validation_problem_names_fields(client: TestClient[Litestar], trader: dict[str, Any]) -> None:
    response = submit(client, trader["headers"], "profile", {"timezone": "Nowhere/Land", "shoe_size": 44})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "onboarding_invalid_answers"
    assert problem["step_id"] == "profile"
    assert {e["field"] for e in problem["errors"]} == {"display_name", "timezone", "shoe_size"}
    assert (
        client.post(
            "/api/onboarding/steps/profile", json={"answers": {}, "x": 1}, headers=trader["headers"]
        ).status_code
        == 400
    )


def test_state_errors_are_problems(client: TestClient[Litestar], trader: dict[str, Any]) -> None:
    headers = trader["headers"]
    blocked = submit(client, headers, "broker", {"kind": "paper", "starting_balance": "1", "currency": "USD"})
    assert blocked.status_code == 409
    assert blocked.json()["code"] == "onboarding_step_blocked"
    assert blocked.json()["blocked_by"] == ["profile"]
    unknown = submit(client, headers, "warp_drive", {})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "onboarding_unknown_step"
    required = client.post("/api/onboarding/steps/profile/skip", headers=headers)
    assert required.status_code == 409
    assert required.json()["code"] == "onboarding_step_required"


def test_go_back_and_change(client: TestClient[Litestar], trader: dict[str, Any], verify_email: VerifyEmail) -> None:
    headers = trader["headers"]
    verify_email(trader)
    for step, answers in (
        ("profile", PROFILE),
        ("verify_email", {}),
        ("broker", {"kind": "paper", "starting_balance": "100000", "currency": "USD"}),
        ("compliance", COMPLIANCE),
        ("risk_settings", RISK),
    ):
        assert submit(client, headers, step, answers).status_code == 200
    unknown = submit(client, headers, "compliance", {**COMPLIANCE, "profile_id": "no-such-firm"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "profile_id"
    changed = submit(client, headers, "compliance", {**COMPLIANCE, "account_size": "25000"}).json()
    assert changed["invalidated"] == ["risk_settings"]
    state = changed["state"]
    assert step_of(state, "risk_settings")["status"] == "needs_review"
    review = step_of(state, "risk_settings")["suggested"]
    assert review["fixed_lots"] == "0.10"  # the previous answer, to confirm in one click
    assert review["max_lots"] == "0.25"  # derived again from the new account size
    # the chosen profile's own daily loss rule beats the generic 5 %: E8 One allows 3 % a day
    e8 = submit(client, headers, "compliance", {**COMPLIANCE, "profile_id": "e8-one", "account_size": "25000"})
    assert e8.status_code == 200, e8.text
    assert step_of(e8.json()["state"], "risk_settings")["suggested"]["daily_loss_limit"] == "750.00"
    assert state["current_step"] == "signal_source"  # the first open step in order (it was never done)
    too_big = submit(client, headers, "risk_settings", {**RISK, "fixed_lots": "2"})
    assert too_big.json()["errors"] == [{"field": "fixed_lots", "message": "must be at most max_lots (1.00)"}]


def test_interruptions_resume(
    client: TestClient[Litestar],
    trader: dict[str, Any],
    settings: Settings,
    runtime: OnboardingRuntime,
    verify_email: VerifyEmail,
) -> None:
    headers = trader["headers"]
    first = submit(client, headers, "profile", PROFILE, **{"Idempotency-Key": "profile-attempt-1"})
    assert first.status_code == 200
    # the response was lost: the retry with the same key gets the same answer, marked as a replay
    retry = submit(client, headers, "profile", PROFILE, **{"Idempotency-Key": "profile-attempt-1"})
    assert retry.status_code == 200
    assert retry.json()["replayed"] is True
    assert retry.json()["step"] == first.json()["step"]
    reused = submit(
        client, headers, "profile", {**PROFILE, "display_name": "Bob"}, **{"Idempotency-Key": "profile-attempt-1"}
    )
    assert reused.status_code == 409
    assert reused.json()["code"] == "onboarding_idempotency_conflict"
    # a failed submission stores nothing, so retrying it with the same key runs again
    bad = submit(client, headers, "verify_email", {}, **{"Idempotency-Key": "email-1"})
    assert bad.status_code == 409  # the address is not verified yet
    verify_email(trader)
    assert submit(client, headers, "verify_email", {}, **{"Idempotency-Key": "email-1"}).status_code == 200

    # the service restarts (a new app on the same database): the user resumes where they stopped
    restarted = create_app(settings)
    configure_onboarding(restarted, runtime)
    with TestClient(app=restarted) as again:
        state = again.get("/api/onboarding", headers=headers).json()
    assert step_of(state, "profile")["status"] == "completed"
    assert step_of(state, "profile")["answers"]["display_name"] == "Alice"
    assert step_of(state, "verify_email")["status"] == "completed"
    assert state["current_step"] == "signal_source"
    assert state["progress_percent"] == 100 * 2 // 9


def test_on_demand_connection_tests(
    client: TestClient[Litestar], trader: dict[str, Any], loopback: LoopbackServers
) -> None:
    headers = trader["headers"]

    def test(answers: dict[str, Any], step: str = "broker") -> Any:
        return client.post(
            "/api/onboarding/connections/test", json={"step_id": step, "answers": answers}, headers=headers
        )

    assert test(bridge(loopback.bridge())).json()["status"] == "ok"
    assert test(bridge(loopback.bridge("stall"), timeout_s=0.3)).json()["status"] == "timeout"
    assert test(bridge(loopback.bridge("wrong_protocol"))).json()["status"] == "protocol_error"
    assert test(bridge(loopback.bridge(), password="nope")).json()["status"] == "bad_credentials"
    assert test(bridge(loopback.bridge(), expected_account_type="live")).json()["status"] == "wrong_server"
    tls_port = loopback.bridge(tls=True)
    assert test(bridge(tls_port, tls=True)).json()["status"] == "tls_error"
    assert test(bridge(tls_port, tls=True, ca_pem=loopback.cert_pem)).json()["status"] == "ok"
    dns = test(bridge(1, host=DNS_FAILURE_HOST)).json()
    assert dns["status"] == "dns_failure"
    assert dns["ok"] is False
    assert test({"kind": "provider_plugin", "plugin_id": "acme.feed"}, "signal_source").json()["status"] == "error"
    invalid = test({"kind": "mt_bridge", "host": "x"})
    assert invalid.status_code == 422
    assert "port" in {e["field"] for e in invalid.json()["errors"]}
    # nothing was stored by testing
    assert step_of(client.get("/api/onboarding", headers=headers).json(), "broker")["answers"] == {}
