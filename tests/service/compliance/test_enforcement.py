"""Pre-trade checks, the account-state feed, locks, breaches, resets and status over HTTP (both databases)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.compliance.conftest import World, equity, now_iso


def test_check_allows_and_denies_with_every_fired_rule(world: World) -> None:
    account_id = world.acme_account()
    allowed = world.check(account_id, size="2", id="o-1")
    assert allowed.status_code == 200, allowed.text
    body = allowed.json()
    assert (body["allowed"], body["outcome"], body["profile_id"], body["version"]) == (
        True,
        "allow",
        "acme-challenge",
        "1",
    )
    assert body["rules"] == []
    # 2 reserved + 4 = 6 lots > 5: denied with the measured value and the threshold.
    denied = world.check(account_id, size="4", id="o-2").json()
    assert (denied["allowed"], denied["outcome"]) == (False, "deny")
    [rule] = denied["rules"]
    assert rule["rule_id"] == "acme.max_lots"
    assert Decimal(rule["value"]) == 6
    assert Decimal(rule["threshold"]) == 5
    assert rule["details"]["comparator"] == "gt"
    assert "6" in rule["message"]
    assert "5" in rule["message"]
    assert denied["audit_sequence"] == body["audit_sequence"] + 1
    # Who may check: owner and the firm's admins; others see no account.
    assert world.check(account_id, who=world.firm_admin).status_code == 200
    assert world.check(account_id, who=world.other_trader).status_code == 404
    assert world.check(account_id, who=world.other_admin).status_code == 404


def test_bad_orders_fail_closed_with_a_clear_error(world: World) -> None:
    account_id = world.acme_account()
    unknown = world.check(account_id, symbol="NOPE/XYZ")
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "order.symbol"
    negative = world.check(account_id, size="-1")
    assert negative.status_code == 422
    naive = world.check(account_id, at="2026-05-12T09:00:00")
    assert naive.status_code in (400, 422)
    extra = world.check(account_id, leverage="5")
    assert extra.status_code == 400
    no_mode = world.check(world.own_account())
    assert no_mode.status_code == 409
    assert no_mode.json()["code"] == "no_mode"


def test_feed_warns_then_locks_until_the_next_day_and_reset(world: World) -> None:
    client = world.client
    account_id = world.acme_account()
    warn = world.feed(account_id, equity("95500"))
    assert warn.status_code == 200, warn.text
    body = warn.json()
    assert body["status"] == "active"
    assert [a["action"] for a in body["actions"]] == ["warn"]
    assert body["actions"][0]["rule_id"] == "acme.max_daily_loss"
    locked = world.feed(account_id, equity("94000", 1)).json()
    assert locked["status"] == "locked"
    [lock] = [a for a in locked["actions"] if a["action"] == "lock"]
    assert lock["rule_id"] == "acme.max_daily_loss"
    until = dt.datetime.fromisoformat(lock["until"])
    assert until.astimezone(ZoneInfo("Europe/Prague")).time() == dt.time(0, 0)  # the next day boundary
    assert until > dt.datetime.now(dt.UTC)
    refused = world.check(account_id, at=now_iso(2)).json()
    assert refused["allowed"] is False
    assert refused["rules"][0]["reason"] == "locked"
    status = client.get(f"/api/trading-accounts/{account_id}/status", headers=world.trader["headers"]).json()
    assert status["status"] == "locked"
    assert [lk["rule_id"] for lk in status["locks"]] == ["acme.max_daily_loss"]
    # Only the funding firm's admins lift a lock early; a reason is required and the reset is audited.
    assert (
        client.post(
            f"/api/trading-accounts/{account_id}/reset", json={"reason": "please"}, headers=world.trader["headers"]
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/trading-accounts/{account_id}/reset", json={"reason": "spike"}, headers=world.other_admin["headers"]
        ).status_code
        == 404
    )
    lifted = client.post(
        f"/api/trading-accounts/{account_id}/reset",
        json={"reason": "Broker price spike confirmed", "rule_id": "acme.max_daily_loss"},
        headers=world.firm_admin["headers"],
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["status"] == "active"
    audit = client.get(
        f"/api/trading-accounts/{account_id}/audit?kind=manual_reset", headers=world.firm_admin["headers"]
    ).json()["items"]
    assert [(r["actor"], r["reason"]) for r in audit] == [(world.firm_admin["user_id"], "Broker price spike confirmed")]
    again = client.post(
        f"/api/trading-accounts/{account_id}/reset",
        json={"reason": "nothing left"},
        headers=world.firm_admin["headers"],
    )
    assert again.status_code == 409


def test_breach_is_terminal_and_survives_a_restart(world: World, settings: Settings) -> None:
    account_id = world.acme_account()
    breach = world.feed(account_id, equity("89000")).json()
    assert breach["status"] == "breached"
    assert {a["action"] for a in breach["actions"]} >= {"breach"}
    assert any(a["action"] == "breach" and a["details"]["terminal"] for a in breach["actions"])
    recovered = world.feed(account_id, equity("120000", 1)).json()
    assert recovered["status"] == "breached"
    # A brand-new app instance (a restart) on the same database sees the same state.
    with TestClient(app=create_app(settings)) as fresh:
        headers = world.trader["headers"]
        status = fresh.get(f"/api/trading-accounts/{account_id}/status", headers=headers).json()
        assert status["status"] == "breached"
        assert Decimal(status["equity"]) == 120000
        decision = fresh.post(
            f"/api/trading-accounts/{account_id}/orders/check",
            json={"symbol": "EURUSD", "side": "buy", "size": "0.1", "at": now_iso(3)},
            headers=headers,
        ).json()
        assert decision["allowed"] is False
        assert "breached" in {rule["reason"] for rule in decision["rules"]}
        admin = world.firm_admin["headers"]
        # The day lock can be lifted; the breach never is.
        reset = fresh.post(f"/api/trading-accounts/{account_id}/reset", json={"reason": "lift the day"}, headers=admin)
        assert reset.status_code == 200
        assert reset.json()["status"] == "breached"
        assert [lock["kind"] for lock in reset.json()["locks"]] == ["breach"]
        again = fresh.post(f"/api/trading-accounts/{account_id}/reset", json={"reason": "try"}, headers=admin)
        assert again.status_code == 409


def test_fills_move_balance_and_release_reservations(world: World) -> None:
    client = world.client
    account_id = world.acme_account()
    assert world.check(account_id, size="5", id="big").json()["allowed"] is True
    assert world.check(account_id, size="1", at=now_iso(1)).json()["allowed"] is False  # 5 reserved
    fill = {"type": "fill", "at": now_iso(2), "symbol": "EURUSD", "side": "buy", "size": "5", "price": "1.0850",
            "action": "open", "position_id": "p-1"}  # fmt: skip
    opened = world.feed(account_id, fill)
    assert opened.status_code == 200, opened.text
    # The reservation became the position: still 5 lots open, so one more lot is still refused.
    assert world.check(account_id, size="1", at=now_iso(3)).json()["allowed"] is False
    close = {"type": "fill", "at": now_iso(4), "symbol": "EURUSD", "side": "sell", "size": "5", "price": "1.0870",
             "action": "close", "position_id": "p-1", "net_pnl": "1000"}  # fmt: skip
    assert world.feed(account_id, close, equity("101000", 5)).status_code == 200
    status = client.get(f"/api/trading-accounts/{account_id}/status", headers=world.trader["headers"]).json()
    assert Decimal(status["balance"]) == 101000
    assert world.check(account_id, size="5", at=now_iso(6)).json()["allowed"] is True
    bad_close = {**close, "position_id": "nope", "at": now_iso(7)}
    assert world.feed(account_id, bad_close).status_code == 422


def test_status_reports_limits_headroom_and_objectives(world: World) -> None:
    client = world.client
    account_id = world.acme_account()
    assert world.feed(account_id, equity("97000")).status_code == 200
    status = client.get(f"/api/trading-accounts/{account_id}/status", headers=world.firm_admin["headers"]).json()
    limits = {limit["rule_id"]: limit for limit in status["limits"]}
    daily = limits["acme.max_daily_loss"]
    assert (Decimal(daily["value"]), Decimal(daily["threshold"]), Decimal(daily["headroom"])) == (97000, 95000, 2000)
    assert Decimal(daily["usage"]) == Decimal("0.6")
    overall = limits["acme.max_loss"]
    assert Decimal(overall["headroom"]) == 7000
    [objective] = status["objectives"]
    assert objective["rule_id"] == "acme.profit_target"
    assert objective["met"] is False
    assert Decimal(objective["target"]) == 10000
    assert status["locks"] == []
    assert (
        client.get(f"/api/trading-accounts/{account_id}/status", headers=world.other_trader["headers"]).status_code
        == 404
    )
    own = world.own_account()
    bare = client.get(f"/api/trading-accounts/{own}/status", headers=world.trader["headers"]).json()
    assert (bare["profile_id"], bare["limits"], bare["status"]) == (None, [], "active")


def test_shipped_profiles_enforce_end_to_end(world: World) -> None:
    # A trader's own account in the ESMA retail regime: leverage above 30:1 on a major pair is refused.
    own = world.own_account()
    assert world.set_mode(own, who=world.trader, source="builtin", profile_id="esma-retail").json()["mode"]["kind"] == (
        "regulatory"
    )
    ok = world.check(own, requested_leverage="30").json()
    assert ok["allowed"] is True
    too_much = world.check(own, requested_leverage="31", at=now_iso(1)).json()
    assert too_much["allowed"] is False
    leverage = next(rule for rule in too_much["rules"] if rule["rule_id"] == "esma.leverage.major_fx")
    assert (Decimal(leverage["value"]), Decimal(leverage["threshold"])) == (31, 30)
    # A firm puts a funded 200k account on FTMO's shipped challenge: the account size drives the limits.
    funded = world.funded_account(size="200000")
    mode = world.set_mode(funded, source="builtin", profile_id="ftmo-2step-challenge").json()["mode"]
    assert (mode["kind"], mode["params"]) == ("firm", {"account_size": "200000"})
    breach = world.feed(funded, equity("189999.99")).json()  # 5% of 200k = 10,000 daily loss
    assert breach["status"] == "breached"
    assert [a["rule_id"] for a in breach["actions"] if a["action"] == "breach"] == ["ftmo.max_daily_loss"]
