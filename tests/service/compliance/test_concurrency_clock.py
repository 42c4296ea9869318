"""Concurrent orders on one account, and clock events across two replicas on one database (both backends)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from service.app import create_app
from service.compliance.models import ClockJob, TradingAccount, audit_records
from service.compliance.scheduler import LOOKBACK, due_events
from service.db.engine import create_engine
from service.settings import Settings
from signalos_core.compliance import load_profile
from tests.service.compliance.conftest import ACME_YAML, World, now_iso


async def _concurrent_checks(settings: Settings, account_id: str, headers: dict[str, str], n: int) -> list[Any]:
    body = {"symbol": "EURUSD", "side": "buy", "size": "3", "at": now_iso()}
    # Two app instances (two replicas, two connection pools) racing on the same account.
    async with AsyncTestClient(create_app(settings)) as one, AsyncTestClient(create_app(settings)) as two:
        clients = [one, two] * (n // 2)
        url = f"/api/trading-accounts/{account_id}/orders/check"
        return list(await asyncio.gather(*(c.post(url, json={**body, "id": f"o{i}"}, headers=headers)
                                           for i, c in enumerate(clients))))  # fmt: skip


async def test_concurrent_orders_never_both_pass_a_limit_only_one_fits(world: World, settings: Settings) -> None:
    # max 5 lots; each order is 3 lots: of any number of simultaneous orders exactly one may pass.
    for _round in range(2):  # an account whose engine is cached, then one compiled during the race
        account_id = world.acme_account() if _round == 0 else world.funded_account()
        if _round:
            assert world.set_mode(account_id).status_code == 200
        responses = await _concurrent_checks(settings, account_id, world.trader["headers"], 6)
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        allowed = [r.json() for r in responses if r.json()["allowed"]]
        denied = [r.json() for r in responses if not r.json()["allowed"]]
        assert len(allowed) == 1
        assert all(d["rules"][0]["rule_id"] == "acme.max_lots" for d in denied)
        # Every decision was chained exactly once, in a single unbroken chain.
        sequences = sorted(r.json()["audit_sequence"] for r in responses)
        assert sequences == list(range(sequences[0], sequences[0] + len(responses)))
        verified = world.client.get(
            f"/api/trading-accounts/{account_id}/audit/verify", headers=world.trader["headers"]
        ).json()
        assert verified["ok"] is True


def _profile(day_at: str = "00:00", tz: str = "Europe/Prague", extra_rules: str = "") -> Any:
    text = ACME_YAML.replace('day_boundary: {timezone: Europe/Prague, at: "00:00"}',
                             f'day_boundary: {{timezone: {tz}, at: "{day_at}"}}')  # fmt: skip
    return load_profile(text + extra_rules)


def test_day_boundaries_follow_dst() -> None:
    start = dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC)
    end = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)
    events = due_events(_profile(), [], start, end)
    # Midnight in Prague is 23:00 UTC in winter and 22:00 UTC from 29 March (CEST).
    assert [e.at for e in events] == [
        dt.datetime(2026, 3, 27, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 22, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 30, 22, tzinfo=dt.UTC),
    ]
    assert {e.event for e in events} == {"day_boundary"}
    # A boundary inside the spring-forward gap (02:30 does not exist on 29 March) moves forward an hour.
    gap = due_events(
        _profile("02:30"), [], dt.datetime(2026, 3, 29, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 3, tzinfo=dt.UTC)
    )
    assert [e.at.astimezone(ZoneInfo("Europe/Prague")).time() for e in gap] == [dt.time(3, 30)]
    # US 17:00 Central boundary across the November fall-back.
    us = due_events(_profile("17:00", "America/Chicago"), [], dt.datetime(2026, 10, 30, tzinfo=dt.UTC),
                    dt.datetime(2026, 11, 3, tzinfo=dt.UTC))  # fmt: skip
    assert [e.at.hour for e in us] == [22, 22, 23, 23]


def test_weekend_close_close_by_and_news_windows() -> None:
    rules = """\
  - id: acme.weekend
    kind: weekend_close
    outcome: breach
  - id: acme.flat_by
    kind: close_by_time
    outcome: breach
    params: {timezone: America/Chicago, flat_by: "15:10", reopen_at: "17:00"}
  - id: acme.news
    kind: news_blackout
    outcome: deny
    breach_when: le
    params: {minutes_before: 2, minutes_after: 2}
"""
    from signalos_core.compliance import NewsEvent

    news = [
        NewsEvent(
            event="NFP", release_at=dt.datetime(2026, 11, 6, 13, 30, tzinfo=dt.UTC), targeted_instruments=["EURUSD"]
        ),
        NewsEvent(event="minor", release_at=dt.datetime(2026, 11, 5, 9, tzinfo=dt.UTC), restricted=False),
    ]
    events = due_events(_profile(extra_rules=rules), news, dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC),
                        dt.datetime(2026, 11, 7, 12, tzinfo=dt.UTC))  # fmt: skip
    kinds = [(e.event, e.at) for e in events]
    assert ("weekend_market_close", dt.datetime(2026, 11, 6, 22, tzinfo=dt.UTC)) in kinds  # 17:00 New York (EST)
    assert ("position_time_check", dt.datetime(2026, 11, 5, 21, 10, tzinfo=dt.UTC)) in kinds  # 15:10 Chicago (CST)
    news_check = next(e for e in events if e.at == dt.datetime(2026, 11, 6, 13, 28, tzinfo=dt.UTC))
    assert news_check.instruments_closing == ("EURUSD",)
    assert all(e.at != dt.datetime(2026, 11, 5, 8, 58, tzinfo=dt.UTC) for e in events)  # not restricted
    assert [e.at for e in events] == sorted(e.at for e in events)


async def _backdate(db_url: str, account_id: str, when: dt.datetime) -> None:
    import uuid

    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(TradingAccount).where(TradingAccount.id == uuid.UUID(account_id)).values(mode_changed_at=when)
            )
    finally:
        await engine.dispose()


async def _count(db_url: str, statement: Any) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("replicas", [2])
async def test_each_clock_event_is_processed_once_across_replicas(
    world: World, settings: Settings, db_url: str, replicas: int
) -> None:
    accounts = [world.acme_account(), world.funded_account()]
    assert world.set_mode(accounts[1]).status_code == 200
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(days=2, hours=1)
    for account_id in accounts:
        await _backdate(db_url, account_id, since)
    prague = ZoneInfo("Europe/Prague")
    expected = sum(
        1
        for n in range(-1, 4)
        if since
        < dt.datetime.combine(since.astimezone(prague).date() + dt.timedelta(days=n), dt.time(0), prague)
        <= now
    )
    assert since > now - LOOKBACK
    apps = [create_app(settings) for _ in range(replicas)]
    async with AsyncTestClient(apps[0]) as first, AsyncTestClient(apps[1]) as second:
        clients = [first, second]
        schedulers = [c.app.state.compliance_scheduler for c in clients]
        assert schedulers[0].replica != schedulers[1].replica

        async def tick_all() -> list[Any]:
            # Each replica ticks on its own event loop (thread), at the same moment, like two processes.
            futures = [
                c.blocking_portal.start_task_soon(s.run_once, now) for c, s in zip(clients, schedulers, strict=True)
            ]
            return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))

        results = await tick_all()
        applied = [(str(account), event.event, event.at) for result in results for account, event in result]
        assert len(applied) == len(set(applied)) == expected * len(accounts)
        again = await tick_all()
        assert again == [[], []]
    jobs = await _count(db_url, select(func.count()).select_from(ClockJob))
    assert jobs == expected * len(accounts)
    clock_records = await _count(
        db_url, select(func.count()).select_from(audit_records).where(audit_records.c.actor.like("clock:%"))
    )
    assert clock_records == jobs
    status = world.client.get(f"/api/trading-accounts/{accounts[0]}/audit/verify", headers=world.trader["headers"])
    assert status.json()["ok"] is True
