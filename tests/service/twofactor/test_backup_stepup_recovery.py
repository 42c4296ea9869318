"""Backup codes, step-up, disabling, password/email changes, lost-device recovery and the operator reset."""

from __future__ import annotations

from typing import Any

import jwt
from click.testing import CliRunner
from litestar.testing import TestClient

from service.cli.main import cli
from service.settings import Settings
from tests.service.conftest import TEST_PASSWORD, bearer, register_and_login
from tests.service.twofactor.conftest import (
    TRADING_PATH,
    Authenticator,
    Clock,
    Outbox,
    enrolled_user,
    event_names,
    password_step,
    verify,
)

NEW_PASSWORD = "a completely new passphrase"


def test_backup_code_login_single_use_count_audit_and_notice(
    client: TestClient[Any], clock: Clock, outbox: Outbox, settings: Settings
) -> None:
    user = enrolled_user(client, clock)
    code = user["backup_codes"][3]
    # Typing is forgiving about case, spaces and dashes, strict about the alphabet.
    typed = code.lower().replace("-", " ")
    ok = verify(client, password_step(client, user["email"]), "backup", typed)
    assert ok.status_code == 200, ok.text
    claims = jwt.decode(ok.json()["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="signalos-api")
    assert claims["amr"] == ["pwd", "backup"]
    assert claims["aal"] == 2
    assert verify(client, password_step(client, user["email"]), "backup", code).status_code == 401
    count = client.get("/api/2fa/backup-codes", headers=user["headers"])
    assert count.json() == {"remaining": 9}
    assert code not in count.text
    assert "backup_used" in event_names(client, user["headers"])
    assert any(m["subject"] == "A backup code was used" and "9 codes remain" in m["body"] for m in outbox.messages())


def test_regenerating_backup_codes_needs_step_up_and_invalidates_the_old_set(
    client: TestClient[Any], clock: Clock
) -> None:
    user = enrolled_user(client, clock)
    clock.shift(301)  # the enrolment verification is no longer fresh
    stale = client.post("/api/2fa/backup-codes/regenerate", json={}, headers=user["headers"])
    assert stale.status_code == 403
    assert stale.json()["code"] == "step_up_required"
    fresh = client.post(
        "/api/2fa/backup-codes/regenerate", json={"code": user["authenticator"].code()}, headers=user["headers"]
    )
    assert fresh.status_code == 200
    new_codes = fresh.json()["backup_codes"]
    assert len(new_codes) == 10
    assert not set(new_codes) & set(user["backup_codes"])
    assert verify(client, password_step(client, user["email"]), "backup", user["backup_codes"][0]).status_code == 401
    assert verify(client, password_step(client, user["email"]), "backup", new_codes[0]).status_code == 200
    assert "backup_regenerated" in event_names(client, user["headers"])


def test_step_up_window_and_password_change(client: TestClient[Any], clock: Clock, settings: Settings) -> None:
    user = enrolled_user(client, clock)
    other = verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code()).json()
    clock.shift(301)
    body = {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}
    refused = client.post("/api/auth/password", json=body, headers=user["headers"])
    assert refused.status_code == 403
    assert refused.json()["code"] == "step_up_required"
    empty = client.post("/api/2fa/step-up", json={}, headers=user["headers"])
    assert empty.status_code == 400
    both = client.post("/api/2fa/step-up", json={"code": "123456", "backup_code": "x"}, headers=user["headers"])
    assert both.status_code == 400
    step = client.post("/api/2fa/step-up", json={"code": user["authenticator"].code()}, headers=user["headers"])
    assert step.status_code == 200, step.text
    claims = jwt.decode(step.json()["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="signalos-api")
    assert claims["aal"] == 2
    assert "otp" in claims["amr"]
    headers = bearer(step.json())
    assert client.post("/api/auth/password", json=body, headers=headers).status_code == 204
    # Password change revoked the other session.
    assert client.get("/api/me", headers=bearer(other)).status_code == 401
    # The window closes after SIGNALOS_STEP_UP_TTL.
    clock.shift(301)
    again = {"current_password": NEW_PASSWORD, "new_password": TEST_PASSWORD}
    assert client.post("/api/auth/password", json=again, headers=headers).json()["code"] == "step_up_required"
    assert "step_up" in event_names(client, headers)
    # ...or the factor comes inside the request itself.
    wrong = client.post("/api/auth/password", json={**again, "code": "000000"}, headers=headers)
    assert wrong.status_code in {401, 403}
    with_code = client.post("/api/auth/password", json={**again, "code": user["authenticator"].code()}, headers=headers)
    assert with_code.status_code == 204, with_code.text


def test_disable_needs_password_and_a_strong_factor_and_revokes_other_sessions(
    client: TestClient[Any], clock: Clock
) -> None:
    user = enrolled_user(client, clock)
    other = verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code()).json()
    headers = user["headers"]
    wrong_password = client.post(
        "/api/2fa/disable", json={"password": "not my password", "code": user["authenticator"].code()}, headers=headers
    )
    assert wrong_password.status_code == 401
    # A fresh session alone is not enough: the factor must be in the request.
    no_factor = client.post("/api/2fa/disable", json={"password": TEST_PASSWORD}, headers=headers)
    assert no_factor.status_code == 403
    assert no_factor.json()["code"] == "step_up_required"
    ok = client.post(
        "/api/2fa/disable", json={"password": TEST_PASSWORD, "backup_code": user["backup_codes"][0]}, headers=headers
    )
    assert ok.status_code == 204, ok.text
    assert client.get("/api/me", headers=bearer(other)).status_code == 401
    status = client.get("/api/2fa", headers=headers).json()
    assert status["totp_enabled"] is False
    assert status["backup_codes_remaining"] == 0
    plain = client.post("/api/auth/login", json={"email": user["email"], "password": TEST_PASSWORD}).json()
    assert "access_token" in plain
    assert client.get(TRADING_PATH, headers=bearer(plain)).status_code == 200
    assert "totp_disabled" in event_names(client, headers)
    assert client.post("/api/2fa/disable", json={"password": TEST_PASSWORD}, headers=headers).json()["code"] == (
        "totp_not_enabled"
    )


def test_lost_device_recovery_with_a_backup_code_then_re_enrolment(client: TestClient[Any], clock: Clock) -> None:
    user = enrolled_user(client, clock)
    old_app: Authenticator = user["authenticator"]
    laptop = verify(client, password_step(client, user["email"]), "totp", old_app.code()).json()
    # The phone is lost: log in with a backup code (aal2), then re-enrol with the backup code as step-up.
    recovered = verify(client, password_step(client, user["email"]), "backup", user["backup_codes"][0])
    assert recovered.status_code == 200
    headers = bearer(recovered.json())
    clock.shift(301)
    setup = client.post("/api/2fa/totp/setup", json={"backup_code": user["backup_codes"][1]}, headers=headers)
    assert setup.status_code == 200, setup.text
    new_app = Authenticator(setup.json()["secret"], clock)
    assert setup.json()["secret"] != user["secret"]
    # Until confirmed, the old authenticator stays in force.
    assert client.get("/api/2fa", headers=headers).json()["totp_enabled"] is True
    enabled = client.post("/api/2fa/totp/enable", json={"code": new_app.code()}, headers=headers)
    assert enabled.status_code == 200
    assert enabled.json()["rotated"] is True
    assert enabled.json()["backup_codes"] is None  # the remaining backup codes stay valid
    assert client.get("/api/me", headers=bearer(laptop)).status_code == 401  # reset revokes other sessions
    assert verify(client, password_step(client, user["email"]), "totp", old_app.code()).status_code == 401
    assert verify(client, password_step(client, user["email"]), "totp", new_app.code()).status_code == 200
    assert "totp_reset" in event_names(client, bearer(enabled.json()))


def test_setup_edge_cases(client: TestClient[Any], clock: Clock) -> None:
    tokens = register_and_login(client)
    missing = client.post("/api/2fa/totp/enable", json={"code": "123456"}, headers=tokens["headers"])
    assert missing.json()["code"] == "totp_setup_missing"
    assert client.post("/api/2fa/step-up", json={"code": "123456"}, headers=tokens["headers"]).json()["code"] == (
        "totp_not_enabled"
    )
    assert client.post("/api/2fa/backup-codes/regenerate", json={}, headers=tokens["headers"]).json()["code"] == (
        "totp_not_enabled"
    )
    setup = client.post("/api/2fa/totp/setup", json={}, headers=tokens["headers"]).json()
    clock.shift(15 * 60 + 1)  # a pending setup expires
    expired = client.post(
        "/api/2fa/totp/enable", json={"code": Authenticator(setup["secret"], clock).code()}, headers=tokens["headers"]
    )
    assert expired.json()["code"] == "totp_setup_missing"
    unknown = client.post("/api/2fa/totp/setup", json={"extra": 1}, headers=tokens["headers"])
    assert unknown.status_code == 400


def test_email_change_needs_step_up_and_the_new_address(client: TestClient[Any], clock: Clock, outbox: Outbox) -> None:
    user = enrolled_user(client, clock)
    other = verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code()).json()
    taken = register_and_login(client)
    start = client.post(
        "/api/me/contact/email",
        json={"email": "New.Address@Example.com", "password": TEST_PASSWORD, "code": user["authenticator"].code()},
        headers=user["headers"],
    )
    assert start.status_code == 202, start.text
    code = outbox.last_code("new.address@example.com")
    assert (
        client.post("/api/me/contact/email/verify", json={"code": "1" * 8}, headers=user["headers"]).status_code == 401
    )
    done = client.post("/api/me/contact/email/verify", json={"code": code}, headers=user["headers"])
    assert done.status_code == 200, done.text
    assert done.json()["value"] == "new.address@example.com"
    assert client.get("/api/me", headers=user["headers"]).json()["email"] == "new.address@example.com"
    assert client.get("/api/me", headers=bearer(other)).status_code == 401
    # The OLD address is told.
    assert any(m["to"] == user["email"] and m["subject"] == "Contact details changed" for m in outbox.messages())
    assert "email_changed" in event_names(client, user["headers"])
    # Taking someone else's address fails at confirmation.
    clock.shift(61)
    client.post(
        "/api/me/contact/email",
        json={"email": taken["email"], "password": TEST_PASSWORD, "code": user["authenticator"].code()},
        headers=user["headers"],
    )
    clash = client.post(
        "/api/me/contact/email/verify", json={"code": outbox.last_code(taken["email"])}, headers=user["headers"]
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == "email_taken"


def test_user_without_2fa_changes_contacts_with_the_password(client: TestClient[Any], outbox: Outbox) -> None:
    tokens = register_and_login(client)
    start = client.post(
        "/api/me/contact/email",
        json={"email": "solo@example.com", "password": TEST_PASSWORD},
        headers=tokens["headers"],
    )
    assert start.status_code == 202
    code = outbox.last_code("solo@example.com")
    assert (
        client.post("/api/me/contact/email/verify", json={"code": code}, headers=tokens["headers"]).status_code == 200
    )


def test_operator_reset_holds_trading(client: TestClient[Any], clock: Clock, settings: Settings, db_url: str) -> None:
    firm_user = register_and_login(client)
    user = enrolled_user(client, clock)
    env = {
        "SIGNALOS_DATABASE_URL": db_url,
        "SIGNALOS_JWT_SECRET": settings.jwt_secret,
        "SIGNALOS_DATA_KEY": __import__("base64").urlsafe_b64encode(settings.data_keys[0]).decode(),
        "SIGNALOS_OUTBOX_PATH": str(settings.outbox_path),
        "SIGNALOS_ARGON2_MEMORY_KIB": "8",
        "SIGNALOS_ARGON2_TIME_COST": "1",
        "SIGNALOS_ARGON2_PARALLELISM": "1",
        "SIGNALOS_LOG_LEVEL": "WARNING",
    }
    runner = CliRunner()
    unconfirmed = runner.invoke(cli, ["twofactor", "reset", "--email", user["email"]], env=env)
    assert unconfirmed.exit_code == 2
    missing = runner.invoke(cli, ["twofactor", "reset", "--email", "nobody@example.com", "--yes"], env=env)
    assert missing.exit_code == 3
    result = runner.invoke(cli, ["twofactor", "reset", "--email", user["email"], "--yes"], env=env)
    assert result.exit_code == 0, result.output
    assert "trading_hold_until" in result.output
    # Every session is gone; the password alone logs in (no factor left), but trading waits for the hold.
    assert client.get("/api/me", headers=user["headers"]).status_code == 401
    plain = client.post("/api/auth/login", json={"email": user["email"], "password": TEST_PASSWORD}).json()
    held = client.get(TRADING_PATH, headers=bearer(plain))
    assert held.status_code == 403
    assert held.json()["code"] == "trading_hold"
    assert client.get("/api/2fa", headers=bearer(plain)).json()["trading_hold_until"] is not None
    # Re-enrolling does not lift the hold early.
    from tests.service.twofactor.conftest import enrol

    again = enrol(client, {**plain, "headers": bearer(plain)}, clock)
    assert client.get(TRADING_PATH, headers=again["headers"]).json()["code"] == "trading_hold"
    assert "totp_reset" in event_names(client, again["headers"])
    assert client.get(TRADING_PATH, headers=firm_user["headers"]).status_code == 200  # nobody else is held
    clock.shift(settings.recovery_trading_hold.total_seconds() + 1)
    later = verify(client, password_step(client, user["email"]), "totp", again["authenticator"].code())
    assert client.get(TRADING_PATH, headers=bearer(later.json())).status_code == 200
