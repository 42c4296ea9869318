"""Onboarding service fixtures: the app's connection testers pointed at the loopback servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from service.onboarding.providers import marketplace_providers
from service.onboarding.services import OnboardingRuntime, configure_onboarding
from service.settings import Settings
from signalos_core.onboarding import ConnectionTesters, TargetPolicy
from tests.core.onboarding.conftest import HttpApi, http_api, loopback  # noqa: F401 - shared fixtures
from tests.service.conftest import make_settings, register_and_login
from tests.service.twofactor.conftest import Outbox

VerifyEmail = Callable[[dict[str, Any]], None]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Test settings with the JSONL dev outbox, so email-verification codes can be read back."""
    return make_settings(db_url, tmp_path, SIGNALOS_OUTBOX_PATH=tmp_path / "outbox.jsonl")


@pytest.fixture
def runtime(http_api: HttpApi) -> OnboardingRuntime:  # noqa: F811 - the fixture imported above
    """Testers allowed to reach loopback, with Telegram/Discord at the local look-alike API."""
    return OnboardingRuntime(
        testers=ConnectionTesters(
            policy=TargetPolicy(allow_private=True),
            telegram_api=f"{http_api.base}/telegram",
            discord_api=f"{http_api.base}/discord",
        )
    )


@pytest.fixture
def client(app: Litestar, runtime: OnboardingRuntime) -> Iterator[TestClient[Litestar]]:
    """The app client with the onboarding runtime installed (provider plugins from the app's marketplace)."""
    runtime.providers = marketplace_providers(app.state)
    configure_onboarding(app, runtime)
    with TestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
def trader(client: TestClient[Litestar]) -> dict[str, Any]:
    """A freshly registered, logged-in trader."""
    return register_and_login(client)


@pytest.fixture
def verify_email(client: TestClient[Litestar], settings: Settings) -> VerifyEmail:
    """Verify a logged-in user's address for real: request a code, read it from the outbox, send it back."""
    assert settings.outbox_path is not None
    outbox = Outbox(settings.outbox_path)

    def run(user: dict[str, Any]) -> None:
        sent = client.post("/api/me/email/verification", headers=user["headers"])
        assert sent.status_code == 202, sent.text
        code = outbox.last_code(user["email"])
        done = client.post("/api/me/email/verify", json={"code": code}, headers=user["headers"])
        assert done.status_code == 200, done.text
        assert done.json()["email_verified"] is True

    return run
