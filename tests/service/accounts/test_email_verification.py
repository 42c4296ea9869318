"""Email verification over HTTP: codes through the dev outbox, refusals, limits, and the reset on email change."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import User
from service.db.engine import create_engine
from tests.service.conftest import TEST_PASSWORD, register_and_login
from tests.service.twofactor.conftest import (
    Clock,
    Outbox,
    build_app,
    enrolled_user,
    password_step,
    tf_settings,
    verify,
)

SEND = "/api/me/email/verification"
VERIFY = "/api/me/email/verify"


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


def _me(client: TestClient[Any], headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _events(client: TestClient[Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = client.get("/api/me/events", params={"limit": 500}, headers=headers).json()
    return body


def _set_email_in_db(db_url: str, user_id: str, email: str) -> datetime | None:
    """Change the address through the ORM (as any future code path would); returns ``email_verified_at`` after."""

    async def run() -> datetime | None:
        engine = create_engine(db_url)
        try:
            async with AsyncSession(engine) as session:
                user = await session.get(User, uuid.UUID(user_id))
                assert user is not None
                user.email = email
                await session.commit()
                await session.refresh(user)
                return user.email_verified_at
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_verification_round_trip_through_the_outbox(client: TestClient[Any], outbox: Outbox) -> None:
    user = register_and_login(client)
    assert _me(client, user["headers"])["email_verified"] is False
    sent = client.post(SEND, headers=user["headers"])
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"channel": "email", "expires_in": 300, "resend_after": 60}
    message = outbox.messages()[-1]
    assert message["to"] == user["email"]
    assert "email verification code" in message["body"]
    code = outbox.last_code(user["email"])
    assert re.fullmatch(r"[0-9]{8}", code)
    done = client.post(VERIFY, json={"code": code}, headers=user["headers"])
    assert done.status_code == 200, done.text
    assert done.json()["email_verified"] is True
    assert done.json()["email"] == user["email"]
    assert _me(client, user["headers"])["email_verified"] is True
    events = _events(client, user["headers"])
    names = [e["event"] for e in events]
    assert "email_verified" in names
    sent_events = [e for e in events if e["event"] == "otp_sent"]
    assert sent_events
    assert sent_events[0]["detail"] == {"channel": "email", "purpose": "verify_email"}
    # No event, response or message beyond the email itself carries the code.
    assert code not in str(events)
    assert code not in done.text


def test_every_endpoint_refuses_without_a_valid_access_token(client: TestClient[Any]) -> None:
    for path, body in ((SEND, None), (VERIFY, {"code": "12345678"})):
        assert client.post(path, json=body).status_code == 401
        refused = client.post(path, json=body, headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "not_authenticated"


def test_mfa_pending_token_opens_neither_endpoint(client: TestClient[Any], clock: Clock) -> None:
    user = enrolled_user(client, clock)
    pending = {"Authorization": f"Bearer {password_step(client, user['email'])}"}
    assert client.post(SEND, headers=pending).status_code == 401
    assert client.post(VERIFY, json={"code": "12345678"}, headers=pending).status_code == 401


def test_bodies_are_validated(client: TestClient[Any], outbox: Outbox) -> None:
    user = register_and_login(client)
    for body in ({}, {"code": ""}, {"code": "12345678", "email": "x@example.com"}, {"code": 12345678}):
        refused = client.post(VERIFY, json=body, headers=user["headers"])
        assert refused.status_code == 400, (body, refused.text)
    assert outbox.messages() == []


def test_wrong_code_counts_and_a_fresh_code_still_works(client: TestClient[Any], outbox: Outbox) -> None:
    user = register_and_login(client)
    assert client.post(SEND, headers=user["headers"]).status_code == 202
    code = outbox.last_code(user["email"])
    for bad in (_wrong(code), "abc", "1234567"):
        refused = client.post(VERIFY, json={"code": bad}, headers=user["headers"])
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_second_factor"
    assert _me(client, user["headers"])["email_verified"] is False
    fails = [e for e in _events(client, user["headers"]) if e["event"] == "mfa_fail"]
    assert len(fails) == 3
    assert {e["detail"]["method"] for e in fails} == {"email"}
    assert client.post(VERIFY, json={"code": code}, headers=user["headers"]).status_code == 200
    # Single use: the consumed code is not accepted again (the address is verified, so it is a no-op 200).
    assert client.post(VERIFY, json={"code": code}, headers=user["headers"]).json()["email_verified"] is True


def test_no_code_sent_is_a_counted_failure(client: TestClient[Any]) -> None:
    user = register_and_login(client)
    refused = client.post(VERIFY, json={"code": "12345678"}, headers=user["headers"])
    assert refused.status_code == 401
    assert [e["detail"]["reason"] for e in _events(client, user["headers"]) if e["event"] == "mfa_fail"] == [
        "no_active_code"
    ]


def test_shared_lockout_refuses_even_the_right_code(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_LOCKOUT_THRESHOLD=3, SIGNALOS_OTP_MAX_ATTEMPTS=10)
    outbox = Outbox(settings.outbox_path)  # type: ignore[arg-type]
    with TestClient(app=build_app(settings)) as client:
        user = register_and_login(client)
        assert client.post(SEND, headers=user["headers"]).status_code == 202
        code = outbox.last_code(user["email"])
        for _ in range(3):
            assert client.post(VERIFY, json={"code": _wrong(code)}, headers=user["headers"]).status_code == 401
        assert "lockout" in [e["event"] for e in _events(client, user["headers"])]
        locked = client.post(VERIFY, json={"code": code}, headers=user["headers"])
        assert locked.status_code == 401
        assert locked.json()["code"] == "invalid_second_factor"
        # The lock is the account's second-factor lock: it ends after SIGNALOS_MFA_LOCKOUT_SECONDS (300), by
        # when that code has expired too (SIGNALOS_OTP_TTL 300); a new one works.
        clock.shift(301)
        assert client.post(SEND, headers=user["headers"]).status_code == 202
        fresh = outbox.last_code(user["email"])
        assert client.post(VERIFY, json={"code": fresh}, headers=user["headers"]).status_code == 200


def test_per_code_attempts_are_limited(db_url: str, tmp_path: Path) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_LOCKOUT_THRESHOLD=50, SIGNALOS_OTP_MAX_ATTEMPTS=2)
    outbox = Outbox(settings.outbox_path)  # type: ignore[arg-type]
    with TestClient(app=build_app(settings)) as client:
        user = register_and_login(client)
        assert client.post(SEND, headers=user["headers"]).status_code == 202
        code = outbox.last_code(user["email"])
        for _ in range(2):
            assert client.post(VERIFY, json={"code": _wrong(code)}, headers=user["headers"]).status_code == 401
        assert client.post(VERIFY, json={"code": code}, headers=user["headers"]).status_code == 401
        reasons = [e["detail"]["reason"] for e in _events(client, user["headers"]) if e["event"] == "mfa_fail"]
        assert reasons[0] == "attempts_exhausted"


def test_cooldown_resend_invalidation_expiry_and_hourly_cap(
    client: TestClient[Any], clock: Clock, outbox: Outbox
) -> None:
    user = register_and_login(client)
    assert client.post(SEND, headers=user["headers"]).status_code == 202
    first = outbox.last_code(user["email"])
    too_soon = client.post(SEND, headers=user["headers"])
    assert too_soon.status_code == 429
    assert too_soon.json()["code"] == "code_resend_too_soon"
    assert 1 <= int(too_soon.headers["retry-after"]) <= 61
    clock.shift(61)
    assert client.post(SEND, headers=user["headers"]).status_code == 202
    second = outbox.last_code(user["email"])
    if first != second:  # the resend invalidated the first code
        assert client.post(VERIFY, json={"code": first}, headers=user["headers"]).status_code == 401
    clock.shift(301)  # the TTL is over
    assert client.post(VERIFY, json={"code": second}, headers=user["headers"]).status_code == 401
    for _ in range(3):  # the cap (5 an hour) is shared with every other emailed code of the account
        clock.shift(61)
        assert client.post(SEND, headers=user["headers"]).status_code == 202
    clock.shift(61)
    capped = client.post(SEND, headers=user["headers"])
    assert capped.status_code == 429
    assert capped.json()["code"] == "code_quota_exceeded"
    assert _me(client, user["headers"])["email_verified"] is False


def test_already_verified_gets_the_same_answer_and_no_mail(
    client: TestClient[Any], clock: Clock, outbox: Outbox
) -> None:
    user = register_and_login(client)
    first = client.post(SEND, headers=user["headers"])
    assert client.post(VERIFY, json={"code": outbox.last_code(user["email"])}, headers=user["headers"]).is_success
    clock.shift(61)
    count = len(outbox.messages())
    again = client.post(SEND, headers=user["headers"])
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert len(outbox.messages()) == count
    # Any code (even a wrong one) on a verified address changes nothing and counts nothing.
    assert client.post(VERIFY, json={"code": "00000000"}, headers=user["headers"]).json()["email_verified"] is True
    assert "mfa_fail" not in [e["event"] for e in _events(client, user["headers"])]


def test_codes_are_bound_to_their_purpose(client: TestClient[Any], clock: Clock, outbox: Outbox) -> None:
    user = enrolled_user(client, clock)
    # A login code does not verify the address ...
    pending = password_step(client, user["email"])
    sent = client.post(
        "/api/auth/2fa/send-code", json={"channel": "email"}, headers={"Authorization": f"Bearer {pending}"}
    )
    assert sent.status_code == 202
    login_code = outbox.last_code(user["email"])
    assert client.post(VERIFY, json={"code": login_code}, headers=user["headers"]).status_code == 401
    # ... and a verification code does not sign in.
    clock.shift(61)
    assert client.post(SEND, headers=user["headers"]).status_code == 202
    verify_code = outbox.last_code(user["email"])
    assert verify(client, password_step(client, user["email"]), "email", verify_code).status_code == 401
    assert client.post(VERIFY, json={"code": verify_code}, headers=user["headers"]).status_code == 200


def test_channel_unavailable_without_an_email_sender(db_url: str, tmp_path: Path) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_OUTBOX_PATH="")
    with TestClient(app=build_app(settings)) as client:
        user = register_and_login(client)
        refused = client.post(SEND, headers=user["headers"])
        assert refused.status_code == 409
        assert refused.json()["code"] == "channel_unavailable"


def test_confirmed_email_change_verifies_the_new_address(client: TestClient[Any], outbox: Outbox) -> None:
    user = register_and_login(client)
    new = f"new-{uuid.uuid4().hex[:8]}@example.com"
    started = client.post(
        "/api/me/contact/email", json={"email": new, "password": TEST_PASSWORD}, headers=user["headers"]
    )
    assert started.status_code == 202, started.text
    assert _me(client, user["headers"])["email_verified"] is False  # nothing changes before the confirmation
    confirmed = client.post(
        "/api/me/contact/email/verify", json={"code": outbox.last_code(new)}, headers=user["headers"]
    )
    assert confirmed.status_code == 200, confirmed.text
    me = _me(client, user["headers"])
    assert me["email"] == new
    assert me["email_verified"] is True


def test_changing_the_address_clears_the_verification(
    client: TestClient[Any], outbox: Outbox, db_url: str, clock: Clock
) -> None:
    user = register_and_login(client)
    assert client.post(SEND, headers=user["headers"]).status_code == 202
    assert client.post(VERIFY, json={"code": outbox.last_code(user["email"])}, headers=user["headers"]).is_success
    # Same address again: the proof stands.
    assert _set_email_in_db(db_url, user["user_id"], user["email"]) is not None
    # Another address by any path that is not the confirmed change: the proof is gone.
    other = f"other-{uuid.uuid4().hex[:8]}@example.com"
    assert _set_email_in_db(db_url, user["user_id"], other) is None
    assert _me(client, user["headers"])["email_verified"] is False


def test_a_code_sent_to_a_previous_address_proves_nothing(client: TestClient[Any], outbox: Outbox, db_url: str) -> None:
    user = register_and_login(client)
    assert client.post(SEND, headers=user["headers"]).status_code == 202
    stale = outbox.last_code(user["email"])
    _set_email_in_db(db_url, user["user_id"], f"moved-{uuid.uuid4().hex[:8]}@example.com")
    refused = client.post(VERIFY, json={"code": stale}, headers=user["headers"])
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_second_factor"
    assert _me(client, user["headers"])["email_verified"] is False
    reasons = [e["detail"]["reason"] for e in _events(client, user["headers"]) if e["event"] == "mfa_fail"]
    assert reasons == ["stale_address"]


def test_openapi_documents_the_endpoints(client: TestClient[Any]) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert "post" in schema["paths"][SEND]
    assert "post" in schema["paths"][VERIFY]
    user_out = schema["components"]["schemas"]["UserOut"]
    assert "email_verified" in user_out["properties"]
    assert "email_verified" in user_out["required"]
