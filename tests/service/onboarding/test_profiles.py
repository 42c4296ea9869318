"""Compliance profiles in onboarding: stored firm/personal profiles are accepted, limits from built-in rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from service.compliance.models import ComplianceProfile
from service.db.engine import create_engine
from service.onboarding.profiles import profile_limits, risk_suggestions
from tests.service.conftest import promote, register_and_login
from tests.service.onboarding.conftest import VerifyEmail


def store_profile(db_url: str, profile_id: str, *, firm_id: str | None = None, owner_id: str | None = None) -> None:
    async def run() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    ComplianceProfile.__table__.insert().values(
                        id=uuid.uuid4(),
                        owner_key=f"firm:{firm_id}" if firm_id else f"user:{owner_id}",
                        scope="firm" if firm_id else "personal",
                        firm_id=uuid.UUID(firm_id) if firm_id else None,
                        owner_id=uuid.UUID(owner_id) if owner_id else None,
                        profile_id=profile_id,
                        version="1",
                        effective_from=dt.date(2026, 1, 1),
                        yaml_text="id: x",
                        content_hash="0" * 64,
                        created_by=uuid.uuid4(),
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_stored_profiles_are_visible_to_their_owners(
    client: TestClient[Litestar], db_url: str, verify_email: VerifyEmail
) -> None:
    root = register_and_login(client)
    promote(db_url, root["user_id"], "platform_admin")
    firm = client.post("/api/admin/firms", json={"name": "Own Rules Ltd"}, headers=root["headers"]).json()["id"]
    member, outsider = register_and_login(client), register_and_login(client)
    promote(db_url, member["user_id"], "trader", firm)
    store_profile(db_url, "own-rules-100k", firm_id=firm)
    store_profile(db_url, "my-personal-limits", owner_id=outsider["user_id"])
    verify_email(member)
    verify_email(outsider)

    def choose(user: dict[str, Any], profile_id: str) -> int:
        headers = user["headers"]
        for step, answers in (
            ("profile", {"display_name": "X", "timezone": "UTC"}),
            ("verify_email", {}),
            ("broker", {"kind": "paper", "starting_balance": "100000", "currency": "USD"}),
        ):
            assert (
                client.post(f"/api/onboarding/steps/{step}", json={"answers": answers}, headers=headers).status_code
                == 200
            )
        answers = {"mode": "prop_firm", "profile_id": profile_id, "account_size": "100000"}
        return client.post("/api/onboarding/steps/compliance", json={"answers": answers}, headers=headers).status_code

    assert choose(member, "own-rules-100k") == 200
    assert choose(member, "my-personal-limits") == 422  # somebody else's personal profile
    assert choose(outsider, "own-rules-100k") == 422  # another firm's profile
    assert choose(outsider, "my-personal-limits") == 200


def test_profile_limits() -> None:
    assert profile_limits("ftmo-2step-challenge", "100000") == {
        "daily_loss_limit": "5000.00",
        "max_loss_limit": "10000.00",
        "profit_target": "10000.00",
    }
    assert profile_limits("ftmo-2step-challenge", "12345.67")["daily_loss_limit"] == "617.28"  # rounded down
    assert profile_limits("own-rules-100k", "100000") == {}
    assert profile_limits("ftmo-2step-challenge", "lots") == {}
    assert profile_limits("ftmo-2step-challenge", "0") == {}
    assert profile_limits("esma-retail", "1000") == {}
    assert risk_suggestions(None) == {}
    assert risk_suggestions({"mode": "regulatory", "regime": "esma_retail"}) == {}
    assert risk_suggestions({"mode": "prop_firm", "profile_id": "esma-retail", "account_size": "1"}) == {}
    assert risk_suggestions({"mode": "prop_firm", "profile_id": "e8-one", "account_size": "10000"}) == {
        "risk_settings": {"daily_loss_limit": "300.00"}
    }
