"""Fixtures for the audit-trail tests: a deterministic clock, an entry factory and both stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from signalos_core.audit import AuditEntry, AuditStore, MemoryAuditStore, SQLiteAuditStore

START = datetime(2026, 5, 12, 22, 0, tzinfo=UTC)


class StepClock:
    """A clock that advances one second per reading, so records have distinct, predictable times."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


def make_entry(index: int = 0, **overrides: Any) -> AuditEntry:
    """A realistic pre-trade decision entry; ``index`` varies equity, outcome and the rules that fired."""
    denied = index % 3 == 1
    fields: dict[str, Any] = {
        "kind": "decision",
        "account_id": f"acc-{index % 2}",
        "chain_id": "acc-main",
        "profile_id": "ftmo-2step",
        "profile_version": "2026.1",
        "profile_hash": "ab" * 32,
        "backend": "python",
        "input": {
            "state": {"balance": Decimal("100000.00"), "equity": Decimal("95000.00") - index},
            "order": {"symbol": "EURUSD", "side": "buy", "size": Decimal("1.5")},
        },
        "outcome": "denied" if denied else "allowed",
        "rules": [
            {
                "rule_id": "ftmo.max_daily_loss" if denied else "ftmo.max_loss",
                "outcome": "deny" if denied else "pass",
                "value": Decimal("95000.00") - index,
                "threshold": Decimal("95000.00"),
                "comparator": "<",
                "message": "equity below floor" if denied else "ok",
            }
        ],
    }
    fields.update(overrides)
    return AuditEntry(**fields)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def entry_factory() -> Callable[..., AuditEntry]:
    return make_entry


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock) -> Iterator[AuditStore]:
    """Each store implementation, so behaviour tests run against both."""
    if request.param == "memory":
        yield MemoryAuditStore(clock=clock)
    else:
        with SQLiteAuditStore(tmp_path / "audit.db", clock=clock) as sqlite_store:
            yield sqlite_store
