"""Building blocks of the compliance area on a real database: audit chain conflicts and the head cache,
order reservations, serialisation retries, and the clock loop (both databases where a database is used)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.app import create_app
from service.compliance import enforcement as enforcement_module
from service.compliance.audit import ChainConflict, DatabaseAuditLog
from service.compliance.enforcement import EnforcementService, StaleState
from service.compliance.engine import (
    RESERVATION_TTL,
    EngineCache,
    initial_state,
    release_for_fill,
    reserve,
    state_for_check,
)
from service.compliance.models import audit_meta
from service.db.engine import create_engine
from service.problems import ProblemError
from signalos_core import ConfigurationError
from signalos_core.audit import AuditEntry, AuditQuery
from signalos_core.compliance import Order
from tests.service.compliance.conftest import World
from tests.service.conftest import make_settings

NOW = dt.datetime(2026, 5, 12, 9, tzinfo=dt.UTC)


@pytest.fixture
async def session(db_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(db_url)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as db:
            yield db
    finally:
        await engine.dispose()


async def test_stale_cached_head_conflicts_then_recovers(session: AsyncSession) -> None:
    writer, other = DatabaseAuditLog(), DatabaseAuditLog()
    entry = AuditEntry(kind="decision", chain_id="account:t", account_id="t", outcome="allow")
    await writer.append(session, entry, now=NOW)
    await session.commit()
    # Another replica appends; this writer's cached head is now stale.
    await other.append(session, entry, now=NOW)
    await session.commit()
    with pytest.raises(ChainConflict):
        await writer.append(session, entry, now=NOW)
    await session.rollback()
    record = await writer.append(session, entry, now=NOW)  # re-reads the head
    await session.commit()
    assert record.sequence == 2
    report = await writer.verify_chain(session, "account:t")
    assert report.ok
    assert report.records == 3
    # A rolled-back append leaves the cache ahead of the database: the next append detects it.
    await writer.append(session, entry, now=NOW)
    await session.rollback()
    with pytest.raises(ChainConflict):
        await writer.append(session, entry, now=NOW)
    await session.rollback()
    assert (await writer.append(session, entry, now=NOW)).sequence == 3
    await session.commit()
    assert await writer.chains(session, prefix="account:") == ["account:t"]
    assert await writer.chains(session, prefix="firm:") == []
    page = await writer.query(session, AuditQuery(rule_id="nothing.fired"))
    assert page.items == ()


async def test_head_cache_is_bounded_and_schema_marker_restored(session: AsyncSession) -> None:
    log = DatabaseAuditLog(head_cache=2)
    for name in ("a", "b", "c"):
        await log.append(session, AuditEntry(kind="decision", chain_id=f"account:{name}"), now=NOW)
    await session.commit()
    assert list(log._heads) == ["account:b", "account:c"]
    await session.execute(delete(audit_meta))
    await log.ensure_schema_marker(session)
    await log.ensure_schema_marker(session)
    await session.commit()
    assert await session.scalar(select(audit_meta.c.value)) == "1"


def test_reservations_count_expire_and_are_released() -> None:
    state = initial_state("acc", Decimal(100000), "USD", NOW)
    order = Order(id="o1", symbol="EURUSD", side="buy", size=Decimal(2), at=NOW)
    state = reserve(state, order, "o1", NOW)
    state = reserve(state, order, "o1", NOW)  # a re-check replaces its own reservation
    assert len(state.pending_orders) == 1
    assert [p.size for p in state_for_check(state, NOW).positions] == [Decimal(2)]
    assert state_for_check(state, NOW, "o1").positions == []  # not counted against itself
    later = NOW + RESERVATION_TTL
    assert state_for_check(state, later).positions == []  # expired
    assert reserve(state, order, "o2", later).pending_orders[0].id == "rsv:o2"
    released = release_for_fill(state, "EURUSD", "buy", Decimal(2), NOW)
    assert released.pending_orders == []
    untouched = release_for_fill(state, "GBPUSD", "buy", Decimal(2), NOW)
    assert untouched is state


async def test_serialised_retries_then_reports_busy(
    world: World, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = uuid.UUID(world.acme_account())
    service = EnforcementService(session, DatabaseAuditLog(), EngineCache())
    attempts: list[int] = []

    async def flaky(_account: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise StaleState("raced")
        return "done"

    assert await service.serialised(account_id, flaky) == "done"
    assert len(attempts) == 3
    monkeypatch.setattr(enforcement_module, "MAX_ATTEMPTS", 2)

    async def always(_account: Any) -> None:
        raise StaleState("raced")

    with pytest.raises(ProblemError) as busy:
        await service.serialised(account_id, always)
    assert busy.value.code == "account_busy"
    with pytest.raises(ProblemError) as missing:
        await service.serialised(uuid.uuid4(), flaky)
    assert missing.value.code == "not_found"


def test_clock_loop_ticks_and_survives_errors(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as bad:
        make_settings(db_url, tmp_path, SIGNALOS_COMPLIANCE_CLOCK_INTERVAL="nonsense")
    assert bad.value.field == "SIGNALOS_COMPLIANCE_CLOCK_INTERVAL"
    settings = make_settings(db_url, tmp_path, SIGNALOS_COMPLIANCE_CLOCK_INTERVAL="0.05")
    assert settings.compliance_clock_interval == 0.05
    app = create_app(settings)
    ticks: list[int] = []
    with TestClient(app=app) as client:
        scheduler = client.app.state.compliance_scheduler
        original = scheduler.run_once

        async def run_once(now: Any = None) -> Any:
            ticks.append(1)
            if len(ticks) == 1:
                raise RuntimeError("database hiccup")
            return await original(now)

        scheduler.run_once = run_once
        deadline = time.monotonic() + 10
        while len(ticks) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(ticks) >= 3  # the failed first tick did not stop the loop


def test_app_starts_on_an_unmigrated_database(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/health").status_code == 200


def test_verify_database_finds_tampering_on_either_backend(world: World, db_url: str) -> None:
    from service.compliance.audit import verify_database
    from service.compliance.models import audit_records

    account_id = world.acme_account()
    assert world.check(account_id, size="1").status_code == 200
    reports = asyncio.run(verify_database(db_url))
    assert reports
    assert all(report.ok for report in reports)

    async def tamper() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    audit_records.update()
                    .where(audit_records.c.chain_id == f"account:{account_id}", audit_records.c.sequence == 1)
                    .values(outcome="deny")
                )
        finally:
            await engine.dispose()

    asyncio.run(tamper())
    [report] = asyncio.run(verify_database(db_url, chain_id=f"account:{account_id}"))
    assert not report.ok
    assert report.issues[0].sequence == 1
