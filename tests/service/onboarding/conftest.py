"""Onboarding service fixtures: the app's connection testers pointed at the loopback servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from service.onboarding.providers import marketplace_providers
from service.onboarding.services import OnboardingRuntime, configure_onboarding
from signalos_core.onboarding import ConnectionTesters, TargetPolicy
from tests.core.onboarding.conftest import HttpApi, http_api, loopback  # noqa: F401 - shared fixtures
from tests.service.conftest import register_and_login


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
