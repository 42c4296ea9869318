"""Fixtures of the email-verification tests: the two-factor test app (JSONL outbox, movable clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar

from service.settings import Settings
from tests.service.twofactor.conftest import (  # noqa: F401 - shared fixtures
    Outbox,
    build_app,
    clock,
    tf_settings,
)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Test settings with the JSONL outbox (codes are read back from it)."""
    return tf_settings(db_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The application under test."""
    return build_app(settings)


@pytest.fixture
def outbox(settings: Settings) -> Outbox:
    """The file every email of the app is written to."""
    assert settings.outbox_path is not None
    return Outbox(settings.outbox_path)
