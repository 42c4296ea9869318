"""Fixtures of the two-factor tests: an app with a JSONL outbox, a movable clock and an authenticator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
import time_machine
from litestar import Litestar, get
from litestar.testing import TestClient

from service.app import create_app
from service.security.guards import TRADING_GUARDS
from service.settings import Settings
from tests.service.conftest import TEST_PASSWORD, bearer, make_settings, register_and_login

TRADING_PATH = "/api/test-trading"


@get(TRADING_PATH, guards=TRADING_GUARDS, sync_to_thread=False)
def trading_probe() -> dict[str, bool]:
    """Stands in for any trading/compliance/sync/marketplace endpoint (they all use TRADING_GUARDS)."""
    return {"ok": True}


class Clock:
    """A time-machine traveller: ``step()`` moves to the next 30 s TOTP step."""

    def __init__(self, traveller: Any) -> None:
        self.traveller = traveller

    def shift(self, seconds: float) -> None:
        self.traveller.shift(seconds)

    def step(self) -> None:
        self.traveller.shift(30)


@pytest.fixture
def clock() -> Iterator[Clock]:
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield Clock(traveller)


class Authenticator:
    """The user's phone app: every ``code()`` is for a new time step, so it is never a replay."""

    def __init__(self, secret: str, clock: Clock) -> None:
        self.secret = secret
        self.clock = clock

    def code(self) -> str:
        self.clock.step()
        return pyotp.TOTP(self.secret).now()

    def current(self) -> str:
        return pyotp.TOTP(self.secret).now()


class Outbox:
    """Reads the JSONL outbox the app writes emails and texts to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def last_code(self, to: str, channel: str = "email") -> str:
        for message in reversed(self.messages()):
            if message["to"] == to and message["channel"] == channel:
                found = re.search(r"\b([0-9]{6,8})\b", message["body"])
                assert found, message
                return found.group(1)
        raise AssertionError(f"no {channel} message to {to}")


def tf_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings with the outbox, long access tokens (the clock moves) and no flood guard."""
    values: dict[str, Any] = {
        "SIGNALOS_OUTBOX_PATH": tmp_path / "outbox.jsonl",
        "SIGNALOS_ACCESS_TOKEN_TTL": 7200,
        "SIGNALOS_SESSION_IDLE_TTL": 7200,
        "SIGNALOS_MFA_PENDING_TTL": 3600,
        "SIGNALOS_MFA_IP_RATE_PER_MINUTE": 0,
    }
    values.update(overrides)
    return make_settings(db_url, tmp_path, **values)


def build_app(settings: Settings) -> Litestar:
    app = create_app(settings)
    app.register(trading_probe)
    return app


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return tf_settings(db_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return build_app(settings)


@pytest.fixture
def outbox(settings: Settings) -> Outbox:
    assert settings.outbox_path is not None
    return Outbox(settings.outbox_path)


def enrol(client: TestClient[Litestar], tokens: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """Set up and confirm an authenticator for ``tokens``' user; returns secret, backup codes, new headers."""
    setup = client.post("/api/2fa/totp/setup", json={}, headers=tokens["headers"])
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    app_ = Authenticator(secret, clock)
    enabled = client.post("/api/2fa/totp/enable", json={"code": app_.code()}, headers=tokens["headers"])
    assert enabled.status_code == 200, enabled.text
    body = enabled.json()
    return {
        **tokens,
        "secret": secret,
        "authenticator": app_,
        "backup_codes": body["backup_codes"],
        "headers": bearer(body),
        "access_token": body["access_token"],
    }


def enrolled_user(client: TestClient[Litestar], clock: Clock, **login_extra: Any) -> dict[str, Any]:
    """A registered trader with 2FA enabled, holding an aal2 session."""
    return enrol(client, register_and_login(client, **login_extra), clock)


def password_step(client: TestClient[Litestar], email: str, password: str = TEST_PASSWORD) -> str:
    """Log in with the password; returns the ``mfa_token`` (asserting 2FA is required)."""
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True, body
    return str(body["mfa_token"])


def verify(client: TestClient[Litestar], mfa_token: str, method: str, code: str) -> Any:
    return client.post(
        "/api/auth/2fa/verify", json={"method": method, "code": code}, headers={"Authorization": f"Bearer {mfa_token}"}
    )


def event_names(client: TestClient[Litestar], headers: dict[str, str]) -> list[str]:
    response = client.get("/api/me/events", params={"limit": 500}, headers=headers)
    assert response.status_code == 200, response.text
    return [e["event"] for e in response.json()]


def strip_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in {"request_id"}}
