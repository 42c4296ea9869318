"""The shared, persisted per-account lockout, the per-IP flood guard, and races on one code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import AsyncTestClient, TestClient

from tests.service.conftest import TEST_PASSWORD, bearer
from tests.service.twofactor.conftest import (
    Clock,
    build_app,
    enrolled_user,
    password_step,
    tf_settings,
    verify,
)


def _events(client: TestClient[Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    return client.get("/api/me/events", params={"limit": 500}, headers=headers).json()  # type: ignore[no-any-return]


def test_lockout_survives_restart_and_a_correct_code_fails_while_locked(
    db_url: str, tmp_path: Path, clock: Clock
) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_LOCKOUT_THRESHOLD=3, SIGNALOS_MFA_LOCKOUT_SECONDS=600)
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)
        token = password_step(client, user["email"])
        for _ in range(2):
            assert verify(client, token, "totp", "000001").status_code == 401
        token = password_step(client, user["email"])
        wrong = verify(client, token, "totp", "000002")
        assert wrong.status_code == 401
        # Locked now: the right code fails, with exactly the same answer as a wrong one.
        locked = verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code())
        assert locked.status_code == 401
        assert {k: v for k, v in locked.json().items() if k not in {"request_id", "instance"}} == {
            k: v for k, v in wrong.json().items() if k not in {"request_id", "instance"}
        }
    # A restart (a new app on the same database) keeps the lock.
    with TestClient(app=build_app(settings)) as client:
        again = verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code())
        assert again.status_code == 401
        assert again.json()["code"] == "invalid_second_factor"
        clock.shift(601)
        ok = verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code())
        assert ok.status_code == 200, ok.text
        events = _events(client, bearer(ok.json()))
        names = [e["event"] for e in events]
        assert "lockout" in names
        assert any(e["event"] == "mfa_fail" and e["detail"]["reason"] == "locked" for e in events)
        # Success reset the counter: two failures do not lock again (threshold 3).
        for _ in range(2):
            assert verify(client, password_step(client, user["email"]), "totp", "000003").status_code == 401
        assert (
            verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code()).status_code
            == 200
        )


def test_lockout_escalates_and_is_capped(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = tf_settings(
        db_url,
        tmp_path,
        SIGNALOS_MFA_LOCKOUT_THRESHOLD=2,
        SIGNALOS_MFA_LOCKOUT_SECONDS=60,
        SIGNALOS_MFA_LOCKOUT_MAX_SECONDS=150,
    )
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)
        for wait in (0, 61, 121, 151):
            clock.shift(wait)
            for _ in range(2 if wait == 0 else 1):
                verify(client, password_step(client, user["email"]), "totp", "000004")
        lockouts = [e["detail"]["seconds"] for e in _events(client, user["headers"]) if e["event"] == "lockout"]
        assert sorted(lockouts) == [60, 120, 150, 150]
        assert any(m["subject"] == "Second factor locked" for m in _outbox(settings))


def _outbox(settings: Any) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]


def test_one_counter_is_shared_by_every_second_factor_check(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_LOCKOUT_THRESHOLD=4, SIGNALOS_MFA_LOCKOUT_SECONDS=600)
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)
        headers = user["headers"]
        assert client.post("/api/2fa/step-up", json={"code": "000005"}, headers=headers).status_code == 401
        assert (
            client.post("/api/2fa/step-up", json={"backup_code": "AAAA-BBBB-CCCC-DDDD"}, headers=headers).status_code
            == 401
        )
        assert (
            client.post(
                "/api/2fa/disable", json={"password": TEST_PASSWORD, "code": "000006"}, headers=headers
            ).status_code
            == 401
        )
        assert verify(client, password_step(client, user["email"]), "backup", "ZZZZ-ZZZZ-ZZZZ-ZZZZ").status_code == 401
        # Four failures on four different endpoints and methods: locked everywhere, even with correct factors.
        assert (
            client.post("/api/2fa/step-up", json={"code": user["authenticator"].code()}, headers=headers).status_code
            == 401
        )
        backup = user["backup_codes"][0]
        assert client.post("/api/2fa/step-up", json={"backup_code": backup}, headers=headers).status_code == 401
        assert (
            verify(client, password_step(client, user["email"]), "totp", user["authenticator"].code()).status_code
            == 401
        )
        # The locked attempt did not consume the backup code.
        clock.shift(601)
        assert client.post("/api/2fa/step-up", json={"backup_code": backup}, headers=headers).status_code == 200


async def test_two_concurrent_verifications_of_one_code_exactly_one_wins(
    db_url: str, tmp_path: Path, clock: Clock
) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_LOCKOUT_THRESHOLD=50)
    async with AsyncTestClient(app=build_app(settings)) as client:
        email = "race@example.com"
        await client.post("/api/auth/register", json={"email": email, "password": TEST_PASSWORD})
        login = (await client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})).json()
        headers = bearer(login)
        secret = (await client.post("/api/2fa/totp/setup", json={}, headers=headers)).json()["secret"]
        import pyotp

        clock.step()
        enabled = await client.post("/api/2fa/totp/enable", json={"code": pyotp.TOTP(secret).now()}, headers=headers)
        assert enabled.status_code == 200
        backup_code = enabled.json()["backup_codes"][0]
        for method, code_of in (("totp", lambda: pyotp.TOTP(secret).now()), ("backup", lambda: backup_code)):
            clock.step()
            code = code_of()
            tokens = []
            for _ in range(2):
                response = await client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})
                tokens.append(response.json()["mfa_token"])
            results: list[httpx.Response] = await asyncio.gather(
                *[
                    client.post(
                        "/api/auth/2fa/verify",
                        json={"method": method, "code": code},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    for token in tokens
                ]
            )
            assert sorted(r.status_code for r in results) == [200, 401], (method, [r.text for r in results])
        # One mfa_pending token used twice at once: one session at most.
        clock.step()
        token = (await client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})).json()[
            "mfa_token"
        ]
        code = pyotp.TOTP(secret).now()
        same_token: list[httpx.Response] = await asyncio.gather(
            *[
                client.post(
                    "/api/auth/2fa/verify",
                    json={"method": "totp", "code": code},
                    headers={"Authorization": f"Bearer {token}"},
                )
                for _ in range(2)
            ]
        )
        assert sorted(r.status_code for r in same_token) == [200, 401]


def test_flood_guard_per_ip(db_url: str, tmp_path: Path, clock: Clock) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_MFA_IP_RATE_PER_MINUTE=3, SIGNALOS_MFA_LOCKOUT_THRESHOLD=50)
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)
        import time

        clock.shift(60 - time.time() % 60 + 1)  # a fresh one-minute window, with seconds to spare
        for _ in range(3):
            assert client.get("/api/2fa", headers=user["headers"]).status_code == 200
        flooded = client.get("/api/2fa", headers=user["headers"])
        assert flooded.status_code == 429
        assert flooded.json()["code"] == "rate_limited"
        assert int(flooded.headers["retry-after"]) >= 1
        clock.shift(60)
        assert client.get("/api/2fa", headers=user["headers"]).status_code == 200
