"""Register → login → refresh → sessions over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient

from service.settings import Settings
from tests.service.conftest import TEST_PASSWORD, bearer, make_settings, register_and_login


def test_register_login_me(client: TestClient[Litestar]) -> None:
    tokens = register_and_login(client, email="Alice@Example.com")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 600
    me = client.get("/api/me", headers=tokens["headers"]).json()
    assert me["email"] == "alice@example.com"
    assert me["role"] == "trader"
    assert "password_hash" not in me


def test_access_token_claims(client: TestClient[Litestar], settings: Settings) -> None:
    import jwt

    tokens = register_and_login(client)
    claims = jwt.decode(
        tokens["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="signalos-api", issuer="signalos"
    )
    assert {"sub", "sid", "jti", "iat", "exp", "iss", "aud", "amr", "aal", "auth_time", "typ"} <= set(claims)
    assert claims["sid"] == tokens["session_id"]
    assert claims["amr"] == ["pwd"]
    assert claims["aal"] == 1
    assert claims["exp"] - claims["iat"] == 600
    assert tokens["email"] not in str(claims)


def test_duplicate_email_and_weak_password(client: TestClient[Litestar]) -> None:
    register_and_login(client, email="bob@example.com")
    again = client.post("/api/auth/register", json={"email": "BOB@example.com", "password": TEST_PASSWORD})
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"
    assert again.headers["content-type"].startswith("application/problem+json")
    weak = client.post("/api/auth/register", json={"email": "carol@example.com", "password": "short"})
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "password"


def test_validation_errors_name_fields(client: TestClient[Litestar]) -> None:
    response = client.post("/api/auth/register", json={"email": 5, "password": TEST_PASSWORD, "extra": 1})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["type"] == "/problems/validation_error"
    assert body["errors"]
    bad_email = client.post("/api/auth/register", json={"email": "not-an-email", "password": TEST_PASSWORD})
    assert bad_email.status_code == 400
    assert bad_email.json()["errors"][0]["field"] == "email"


def test_login_errors_are_generic(client: TestClient[Litestar]) -> None:
    register_and_login(client, email="dave@example.com")
    wrong = client.post("/api/auth/login", json={"email": "dave@example.com", "password": "wrong password!!"})
    unknown = client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "wrong password!!"})
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())


def test_login_backoff_persists_and_looks_generic(db_url: str, tmp_path: Any) -> None:
    from service.app import create_app

    settings = make_settings(db_url, tmp_path, SIGNALOS_LOGIN_MAX_FAILURES=2, SIGNALOS_LOGIN_BACKOFF_BASE=600)
    with TestClient(app=create_app(settings)) as client:
        register_and_login(client, email="erin@example.com")
        for _ in range(2):
            assert (
                client.post(
                    "/api/auth/login", json={"email": "erin@example.com", "password": "nope nope nope"}
                ).status_code
                == 401
            )
    # A restart (new app on the same database) keeps the back-off: even the right password fails, generically.
    with TestClient(app=create_app(settings)) as client:
        locked = client.post("/api/auth/login", json={"email": "erin@example.com", "password": TEST_PASSWORD})
        assert locked.status_code == 401
        assert locked.json()["code"] == "invalid_credentials"


def test_refresh_rotates_and_reuse_revokes_family(db_url: str, tmp_path: Any) -> None:
    from service.app import create_app

    settings = make_settings(db_url, tmp_path, SIGNALOS_REFRESH_REUSE_GRACE=0)
    with TestClient(app=create_app(settings)) as client:
        first = register_and_login(client)
        second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        pair = second.json()
        assert pair["refresh_token"] != first["refresh_token"]
        assert pair["session_id"] == first["session_id"]
        assert client.get("/api/me", headers=bearer(pair)).status_code == 200
        # Reuse of the rotated token: 401 and the whole session is revoked, new tokens included.
        reuse = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401
        assert reuse.json()["code"] == "invalid_refresh_token"
        assert client.get("/api/me", headers=bearer(pair)).status_code == 401
        assert client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
        login = client.post("/api/auth/login", json={"email": first["email"], "password": TEST_PASSWORD}).json()
        events = [e["event"] for e in client.get("/api/me/events", headers=bearer(login)).json()]
        assert "refresh_reuse_detected" in events


def test_unknown_refresh_token(client: TestClient[Litestar]) -> None:
    response = client.post("/api/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_concurrent_refresh_exactly_one_wins(app: Litestar) -> None:
    async with AsyncTestClient(app=app) as client:
        email = "frank@example.com"
        await client.post("/api/auth/register", json={"email": email, "password": TEST_PASSWORD})
        tokens = (await client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})).json()
        responses: list[httpx.Response] = await asyncio.gather(
            *[client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(4)]
        )
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) == 1
        # The losers are the same client inside the grace window: 409, and the winner's session stays valid.
        assert all(code == 409 for code in codes if code != 200)
        winner = next(r.json() for r in responses if r.status_code == 200)
        assert (await client.get("/api/me", headers=bearer(winner))).status_code == 200


def test_sessions_list_and_revoke(client: TestClient[Litestar]) -> None:
    one = register_and_login(client, device="laptop")
    two = client.post(
        "/api/auth/login", json={"email": one["email"], "password": TEST_PASSWORD, "device": "phone"}
    ).json()
    three = client.post("/api/auth/login", json={"email": one["email"], "password": TEST_PASSWORD}).json()
    sessions = client.get("/api/me/sessions", headers=bearer(two)).json()
    assert len(sessions) == 3
    assert [s["current"] for s in sessions].count(True) == 1
    assert {s["device"] for s in sessions} >= {"laptop", "phone"}
    # Revoking a session kills its access token at once, not at expiry.
    assert client.delete(f"/api/me/sessions/{one['session_id']}", headers=bearer(two)).status_code == 204
    assert client.get("/api/me", headers=one["headers"]).status_code == 401
    revoked = client.post("/api/me/sessions/revoke-others", headers=bearer(two)).json()
    assert revoked == {"revoked": 1}
    assert client.get("/api/me", headers=bearer(three)).status_code == 401
    assert client.get("/api/me", headers=bearer(two)).status_code == 200


def test_cannot_revoke_someone_elses_session(client: TestClient[Litestar]) -> None:
    alice = register_and_login(client)
    mallory = register_and_login(client)
    response = client.delete(f"/api/me/sessions/{alice['session_id']}", headers=mallory["headers"])
    assert response.status_code == 404
    assert client.get("/api/me", headers=alice["headers"]).status_code == 200


def test_logout(client: TestClient[Litestar]) -> None:
    tokens = register_and_login(client)
    assert client.post("/api/auth/logout", headers=tokens["headers"]).status_code == 204
    assert client.get("/api/me", headers=tokens["headers"]).status_code == 401
    assert client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_password_change_revokes_other_sessions(client: TestClient[Litestar]) -> None:
    one = register_and_login(client)
    two = client.post("/api/auth/login", json={"email": one["email"], "password": TEST_PASSWORD}).json()
    wrong = client.post(
        "/api/auth/password",
        headers=one["headers"],
        json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
    )
    assert wrong.status_code == 401
    ok = client.post(
        "/api/auth/password",
        headers=one["headers"],
        json={"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert ok.status_code == 204
    assert client.get("/api/me", headers=one["headers"]).status_code == 200
    assert client.get("/api/me", headers=bearer(two)).status_code == 401
    assert client.post("/api/auth/login", json={"email": one["email"], "password": TEST_PASSWORD}).status_code == 401
    assert (
        client.post("/api/auth/login", json={"email": one["email"], "password": "a brand new passphrase"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",  # alg=none
        "Basic dXNlcjpwYXNz",
    ],
)
def test_bad_tokens_refused(client: TestClient[Litestar], header: str) -> None:
    response = client.get("/api/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_token_signed_with_other_key_or_expired_refused(client: TestClient[Litestar], settings: Settings) -> None:
    import time

    import jwt

    tokens = register_and_login(client)
    claims = jwt.decode(tokens["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="signalos-api")
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, settings.jwt_secret, algorithm="HS256")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    hs512 = jwt.encode(claims, settings.jwt_secret, algorithm="HS512")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {hs512}"}).status_code == 401
    other_aud = jwt.encode({**claims, "aud": "mfa_pending"}, settings.jwt_secret, algorithm="HS256")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {other_aud}"}).status_code == 401
