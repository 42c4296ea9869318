"""Emailed and texted codes: lifetime, single use, attempts, resend, cooldown, hourly cap, and real delivery."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar.testing import TestClient

from service.settings import Settings
from service.twofactor.senders import DeliveryError, HttpSmsSender, Message, OutboxSender, SmtpSender
from tests.service.conftest import TEST_PASSWORD, bearer
from tests.service.twofactor.conftest import (
    TRADING_PATH,
    Clock,
    Outbox,
    build_app,
    enrolled_user,
    password_step,
    tf_settings,
    verify,
)
from tests.service.twofactor.servers import free_port, sms_provider, smtp_server


def _send(client: TestClient[Any], token: str, channel: str) -> Any:
    return client.post(
        "/api/auth/2fa/send-code", json={"channel": channel}, headers={"Authorization": f"Bearer {token}"}
    )


def test_email_code_login_is_single_use_and_never_grants_trading(
    client: TestClient[Any], clock: Clock, outbox: Outbox, settings: Settings
) -> None:
    user = enrolled_user(client, clock)
    token = password_step(client, user["email"])
    sent = _send(client, token, "email")
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"channel": "email", "expires_in": 300, "resend_after": 60}
    code = outbox.last_code(user["email"])
    assert re.fullmatch(r"[0-9]{8}", code)
    ok = verify(client, token, "email", code)
    assert ok.status_code == 200, ok.text
    claims = jwt.decode(ok.json()["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="signalos-api")
    assert claims["amr"] == ["pwd", "email"]
    assert claims["aal"] == 1
    # Email is a recovery channel: the session can read the account, not trade.
    assert client.get("/api/me", headers=bearer(ok.json())).status_code == 200
    refused = client.get(TRADING_PATH, headers=bearer(ok.json()))
    assert refused.status_code == 403
    assert refused.json()["code"] == "mfa_required"
    # ... and cannot switch 2FA off, regenerate backup codes or change contacts without the authenticator.
    email_headers = bearer(ok.json())
    assert (
        client.post("/api/2fa/backup-codes/regenerate", json={}, headers=email_headers).json()["code"]
        == "step_up_required"
    )
    assert (
        client.post("/api/2fa/disable", json={"password": TEST_PASSWORD}, headers=email_headers).json()["code"]
        == "step_up_required"
    )
    change = client.post(
        "/api/me/contact/email", json={"email": "new@example.com", "password": TEST_PASSWORD}, headers=email_headers
    )
    assert change.json()["code"] == "step_up_required"
    # Single use.
    assert verify(client, password_step(client, user["email"]), "email", code).status_code == 401


def test_code_resend_cooldown_invalidation_expiry_and_hourly_cap(
    client: TestClient[Any], clock: Clock, outbox: Outbox
) -> None:
    user = enrolled_user(client, clock)
    token = password_step(client, user["email"])
    assert _send(client, token, "email").status_code == 202
    first = outbox.last_code(user["email"])
    too_soon = _send(client, token, "email")
    assert too_soon.status_code == 429
    assert too_soon.json()["code"] == "code_resend_too_soon"
    assert 1 <= int(too_soon.headers["retry-after"]) <= 61
    clock.shift(61)
    assert _send(client, token, "email").status_code == 202
    second = outbox.last_code(user["email"])
    # The resend invalidated the first code.
    if first != second:
        assert verify(client, token, "email", first).status_code == 401
    # Expiry: the second code dies after the TTL.
    clock.shift(301)
    assert verify(client, password_step(client, user["email"]), "email", second).status_code == 401
    # Hourly cap (5): two sent so far; three more pass, the sixth is refused.
    token = password_step(client, user["email"])
    for _ in range(3):
        clock.shift(61)
        assert _send(client, token, "email").status_code == 202
    clock.shift(61)
    capped = _send(client, token, "email")
    assert capped.status_code == 429
    assert capped.json()["code"] == "code_quota_exceeded"
    events = client.get("/api/me/events", params={"limit": 200}, headers=user["headers"]).json()
    sent = [e for e in events if e["event"] == "otp_sent"]
    assert len(sent) == 5
    assert all(set(e["detail"]) == {"channel", "purpose"} for e in sent)


def test_code_attempts_per_code_are_limited(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_LOCKOUT_THRESHOLD=50, SIGNALOS_OTP_MAX_ATTEMPTS=3)
    outbox = Outbox(settings.outbox_path)  # type: ignore[arg-type]
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)
        token = password_step(client, user["email"])
        assert _send(client, token, "email").status_code == 202
        code = outbox.last_code(user["email"])
        wrong = f"{(int(code) + 1) % 10**8:08d}"
        for _ in range(2):
            assert verify(client, token, "email", wrong).status_code == 401
        token = password_step(client, user["email"])
        assert verify(client, token, "email", wrong).status_code == 401
        # Three attempts used: even the right code is dead now.
        assert verify(client, password_step(client, user["email"]), "email", code).status_code == 401


def test_sms_through_a_real_http_provider(db_url: str, tmp_path: Path, clock: Clock) -> None:
    with sms_provider() as (url, texts), smtp_server() as (smtp_port, mails):
        settings = tf_settings(
            db_url,
            tmp_path,
            SIGNALOS_OUTBOX_PATH="",
            SIGNALOS_SMS_URL=url,
            SIGNALOS_SMS_TOKEN="sms-token",
            SIGNALOS_SMTP_HOST="127.0.0.1",
            SIGNALOS_SMTP_PORT=smtp_port,
            SIGNALOS_SMTP_TLS="none",
        )
        with TestClient(app=build_app(settings)) as client:
            user = enrolled_user(client, clock)
            # Setting a phone needs the password and a second factor; the code goes to the NEW number.
            no_factor_later = client.post(
                "/api/me/contact/phone",
                json={"phone": "+447911123456", "password": "wrong password!!"},
                headers=user["headers"],
            )
            assert no_factor_later.status_code == 401
            bad = client.post(
                "/api/me/contact/phone",
                json={"phone": "07911 123456", "password": TEST_PASSWORD, "code": user["authenticator"].code()},
                headers=user["headers"],
            )
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["field"] == "phone"
            started = client.post(
                "/api/me/contact/phone",
                json={"phone": "+44 7911 123456", "password": TEST_PASSWORD, "code": user["authenticator"].code()},
                headers=user["headers"],
            )
            assert started.status_code == 202, started.text
            assert texts[-1]["to"] == "+447911123456"
            code = re.search(r"\b([0-9]{6})\b", texts[-1]["body"]).group(1)  # type: ignore[union-attr]
            confirmed = client.post("/api/me/contact/phone/verify", json={"code": code}, headers=user["headers"])
            assert confirmed.status_code == 200, confirmed.text
            assert confirmed.json()["value"] == "+44*******456"
            status = client.get("/api/2fa", headers=user["headers"]).json()
            assert status["phone_verified"] is True
            assert "sms" in status["login_methods"]
            # Login by SMS: aal2 (NIST "restricted", offered next to TOTP).
            token = password_step(client, user["email"])
            clock.shift(61)
            assert _send(client, token, "sms").status_code == 202
            sms_code = re.search(r"\b([0-9]{6})\b", texts[-1]["body"]).group(1)  # type: ignore[union-attr]
            ok = verify(client, token, "sms", sms_code)
            assert ok.status_code == 200
            claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
            assert claims["amr"] == ["pwd", "sms"]
            assert claims["aal"] == 2
            # Notifications went out by real SMTP.
            subjects = [m["subject"] for m in mails]
            assert "Two-factor authentication enabled" in subjects
            assert "Contact details changed" in subjects
            # SMS alone cannot disable 2FA: disabling needs the authenticator or a backup code.
            refused = client.post("/api/2fa/disable", json={"password": TEST_PASSWORD}, headers=bearer(ok.json()))
            assert refused.json()["code"] == "step_up_required"
            removed = client.post(
                "/api/me/contact/phone/remove",
                json={"password": TEST_PASSWORD, "code": user["authenticator"].code()},
                headers=user["headers"],
            )
            assert removed.status_code == 204
            assert client.get("/api/2fa", headers=user["headers"]).json()["phone"] is None


def test_email_login_code_through_real_smtp(db_url: str, tmp_path: Path, clock: Clock) -> None:
    with smtp_server() as (port, mails):
        settings = tf_settings(
            db_url,
            tmp_path,
            SIGNALOS_OUTBOX_PATH="",
            SIGNALOS_SMTP_HOST="127.0.0.1",
            SIGNALOS_SMTP_PORT=port,
            SIGNALOS_SMTP_TLS="none",
            SIGNALOS_SMTP_FROM="Security <security@signalos.test>",
        )
        with TestClient(app=build_app(settings)) as client:
            user = enrolled_user(client, clock)
            token = password_step(client, user["email"])
            assert _send(client, token, "email").status_code == 202
            mail = mails[-1]
            assert mail["to"] == [user["email"]]
            assert mail["from"] == "security@signalos.test"
            code = re.search(r"\b([0-9]{8})\b", mail["body"]).group(1)  # type: ignore[union-attr]
            assert verify(client, token, "email", code).status_code == 200
            # SMS is not configured: asking for it says so.
            unavailable = _send(client, password_step(client, user["email"]), "sms")
            assert unavailable.status_code == 409
            assert unavailable.json()["code"] == "channel_unavailable"


def test_delivery_failure_is_a_503_and_no_code_leaks(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = tf_settings(
        db_url,
        tmp_path,
        SIGNALOS_OUTBOX_PATH="",
        SIGNALOS_SMTP_HOST="127.0.0.1",
        SIGNALOS_SMTP_PORT=free_port(),
        SIGNALOS_SMTP_TLS="none",
    )
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)  # notifications fail silently (logged), enrolment still works
        failed = _send(client, password_step(client, user["email"]), "email")
        assert failed.status_code == 503
        assert failed.json()["code"] == "delivery_failed"


async def test_senders_directly(tmp_path: Path) -> None:
    message = Message(channel="email", to="a@example.com", subject="s", body="code 12345678")
    outbox = OutboxSender(tmp_path / "deep" / "outbox.jsonl")
    await outbox.send(message)
    assert Outbox(outbox.path).last_code("a@example.com") == "12345678"
    with smtp_server() as (port, mails):
        await SmtpSender(host="127.0.0.1", port=port, sender="x@example.com", tls="none").send(message)
        assert mails[0]["subject"] == "s"
    with pytest.raises(DeliveryError):
        await SmtpSender(host="127.0.0.1", port=free_port(), sender="x@example.com", tls="none").send(message)
    sms = Message(channel="sms", to="+447911123456", subject="", body="123456")
    with sms_provider() as (url, texts):
        await HttpSmsSender(url=url, token="sms-token").send(sms)
        assert texts == [{"to": "+447911123456", "body": "123456"}]
        with pytest.raises(DeliveryError):
            await HttpSmsSender(url=url, token="wrong").send(sms)
    with sms_provider(status=500) as (url, _texts), pytest.raises(DeliveryError):
        await HttpSmsSender(url=url, token="sms-token").send(sms)
    with pytest.raises(DeliveryError):
        await HttpSmsSender(url=f"http://127.0.0.1:{free_port()}/x", token=None).send(sms)
