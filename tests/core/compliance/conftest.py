"""Fixtures for compliance tests: an inline-profile factory and common timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from signalos_core.compliance import AccountState, Engine, Profile, load_profile

UTC = dt.UTC
T0 = dt.datetime(2026, 5, 12, 10, 0, tzinfo=UTC)


def make_profile(rules: str, *, tz: str = "Europe/Prague", at: str = "00:00", extra: str = "") -> Profile:
    """A profile from an indented YAML rules block."""
    text = (
        f'id: test-profile\nversion: "t1"\neffective_from: 2026-01-01\n'
        f"parameters: {{account_size: {{type: money, default: 100000}}}}\n{extra}"
        f'day_boundary: {{timezone: {tz}, at: "{at}"}}\nrules:\n{rules}'
    )
    return load_profile(text)


@pytest.fixture
def engine_for() -> Callable[..., Engine]:
    """Build an :class:`Engine` from a rules block (python backend unless asked)."""

    def build(rules: str, *, backend: str = "python", **kw: str) -> Engine:
        return Engine(make_profile(rules, **kw), backend=backend, explain_passed=True)  # type: ignore[arg-type]

    return build


def state(**kw: object) -> AccountState:
    """An AccountState with 100k defaults."""
    base: dict[str, object] = {"balance": Decimal(100000), "initial_balance": Decimal(100000)}
    base.update(kw)
    return AccountState(**base)  # type: ignore[arg-type]
