"""Fixtures of the compliance HTTP tests: a firm with its admin, traders, a firm profile, funded accounts.

Every test runs on SQLite and (with SIGNALOS_TEST_POSTGRES_URL) PostgreSQL through the service fixtures.
The in-process clock loop is disabled here; tests drive the scheduler explicitly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import insert, update

from service.accounts.models import Firm, User
from service.db.engine import create_engine
from tests.service.conftest import register_and_login

ACME_YAML = """\
id: acme-challenge
version: "1"
effective_from: 2026-01-01
title: Acme 100k challenge
parameters:
  account_size: {type: money, default: 100000}
day_boundary: {timezone: Europe/Prague, at: "00:00"}
rules:
  - id: acme.max_daily_loss
    kind: daily_loss
    outcome: lock
    breach_when: lt
    params: {pct: 5}
    warn_at: [0.8]
  - id: acme.max_loss
    kind: max_loss
    outcome: breach
    breach_when: lt
    params: {pct: 10}
  - id: acme.max_lots
    kind: max_position_size
    outcome: deny
    breach_when: gt
    params: {max: 5}
  - id: acme.profit_target
    kind: profit_target
    outcome: objective
    params: {pct: 10}
"""

INVALID_YAML = """\
id: acme-broken
version: "1"
effective_from: 2026-01-01
day_boundry: {timezone: Europe/Prague, at: "00:00"}
rules:
  - id: acme.max_daily_loss
    kind: daily_los
    outcome: lock
    breach_when: lt
    params: {pct: 5}
"""


def now_iso(offset_seconds: float = 0) -> str:
    """The current UTC time (plus an offset) in ISO 8601, as feeds and orders send it."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_seconds)).isoformat()


def equity(value: str, offset_seconds: float = 0) -> dict[str, Any]:
    """An equity-update feed event."""
    return {"type": "equity_update", "at": now_iso(offset_seconds), "equity": value}


def version_of(text: str, version: str, **replace: str) -> str:
    """ACME_YAML-like text with another version (and optional textual replacements)."""
    out = text.replace('version: "1"', f'version: "{version}"')
    for old, new in replace.items():
        out = out.replace(old, new)
    return out


async def _bootstrap(
    db_url: str, firm_ids: list[str], users: list[dict[str, Any]], roles: list[tuple[str, str | None]]
) -> None:
    """Create the firms and promote the admins in one transaction (faster than the admin API per test)."""
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            now = dt.datetime.now(dt.UTC)
            for index, firm_id in enumerate(firm_ids):
                await connection.execute(
                    insert(Firm).values(
                        id=uuid.UUID(firm_id), name=f"Firm {index} {firm_id[:8]}", require_2fa=False,
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
            for user, (role, firm_id) in zip(users, roles, strict=True):
                await connection.execute(
                    update(User)
                    .where(User.id == uuid.UUID(user["user_id"]))
                    .values(role=role, firm_id=uuid.UUID(firm_id) if firm_id else None)
                )
    finally:
        await engine.dispose()


class World:
    """Users, a firm, another firm, and helpers to act as them."""

    def __init__(self, client: TestClient[Litestar], db_url: str) -> None:
        self.client = client
        self.db_url = db_url
        users = [register_and_login(client) for _ in range(5)]
        self.firm_id, self.other_firm_id = str(uuid.uuid4()), str(uuid.uuid4())
        roles = [("platform_admin", None), ("firm_admin", self.firm_id), ("firm_admin", self.other_firm_id)]
        asyncio.run(_bootstrap(db_url, [self.firm_id, self.other_firm_id], users[:3], roles))
        self.platform, self.firm_admin, self.other_admin = (self.relogin(u) for u in users[:3])
        self.trader, self.other_trader = users[3], users[4]

    def relogin(self, tokens: dict[str, Any]) -> dict[str, Any]:
        from tests.service.conftest import TEST_PASSWORD, bearer

        response = self.client.post("/api/auth/login", json={"email": tokens["email"], "password": TEST_PASSWORD})
        assert response.status_code == 200, response.text
        fresh: dict[str, Any] = {**tokens, **response.json()}
        fresh["headers"] = bearer(fresh)
        return fresh

    def upload(self, yaml_text: str = ACME_YAML, who: dict[str, Any] | None = None, firm_id: str | None = None) -> Any:
        return self.client.post(
            f"/api/firms/{firm_id or self.firm_id}/profiles",
            json={"yaml": yaml_text},
            headers=(who or self.firm_admin)["headers"],
        )

    def funded_account(self, size: str = "100000", owner: dict[str, Any] | None = None) -> str:
        owner = owner or self.trader
        response = self.client.post(
            "/api/trading-accounts",
            json={"name": "Funded", "broker": "Acme Markets", "platform": "MT5", "account_size": size,
                  "currency": "USD", "owner_id": owner["user_id"], "firm_id": self.firm_id},
            headers=self.firm_admin["headers"],
        )  # fmt: skip
        assert response.status_code == 201, response.text
        account_id: str = response.json()["id"]
        return account_id

    def own_account(self, who: dict[str, Any] | None = None, size: str = "50000") -> str:
        response = self.client.post(
            "/api/trading-accounts",
            json={"name": "Own", "broker": "IC Markets", "platform": "cTrader", "account_size": size},
            headers=(who or self.trader)["headers"],
        )
        assert response.status_code == 201, response.text
        account_id: str = response.json()["id"]
        return account_id

    def set_mode(self, account_id: str, who: dict[str, Any] | None = None, **body: Any) -> Any:
        payload = {"source": "firm", "profile_id": "acme-challenge", "reason": "challenge purchased", **body}
        return self.client.put(
            f"/api/trading-accounts/{account_id}/mode", json=payload, headers=(who or self.firm_admin)["headers"]
        )

    def acme_account(self) -> str:
        """A funded account in the Acme firm mode."""
        response = self.upload()
        assert response.status_code == 201, response.text
        account_id = self.funded_account()
        response = self.set_mode(account_id)
        assert response.status_code == 200, response.text
        return account_id

    def check(self, account_id: str, who: dict[str, Any] | None = None, **order: Any) -> Any:
        body = {"symbol": "EURUSD", "side": "buy", "size": "1", "at": now_iso(), **order}
        return self.client.post(
            f"/api/trading-accounts/{account_id}/orders/check", json=body, headers=(who or self.trader)["headers"]
        )

    def feed(self, account_id: str, *events: dict[str, Any], who: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/api/trading-accounts/{account_id}/feed",
            json={"events": list(events)},
            headers=(who or self.trader)["headers"],
        )


@pytest.fixture
def world(client: TestClient[Litestar], db_url: str) -> Iterator[World]:
    """Platform admin, two firms with an admin each, two traders."""
    return World(client, db_url)
