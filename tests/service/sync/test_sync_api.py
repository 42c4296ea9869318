"""Sync over HTTP on SQLite and PostgreSQL: the library's device side against the real service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from service.sync.transport import HttpSyncTransport
from signalos_core.offline import (
    Backoff,
    OfflineClient,
    Outbox,
    PullRequest,
    PushedAction,
    PushRequest,
    SyncEngine,
    position_id_for,
)
from tests.service.compliance.conftest import ACME_YAML
from tests.service.conftest import promote, register_and_login

D = Decimal


@pytest.fixture
def admin(client: TestClient[Litestar], db_url: str) -> dict[str, Any]:
    tokens = register_and_login(client)
    promote(db_url, tokens["user_id"], "platform_admin")
    return tokens


def _set_price(client: TestClient[Litestar], admin: dict[str, Any], symbol: str, price: str) -> dict[str, Any]:
    response = client.put(f"/api/paper/quotes/{symbol}", json={"price": price}, headers=admin["headers"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class Device:
    """A device: its own outbox file, the offline client and a sync engine over HTTP."""

    def __init__(self, path: Path, name: str, http: httpx.Client, token: str) -> None:
        self.client = OfflineClient(Outbox(path / f"{name}.db", device_id=name))
        self.transport = HttpSyncTransport(http, token)
        self.engine = SyncEngine(self.client.outbox, self.transport, backoff=Backoff(0, 0))


@pytest.fixture
def devices(tmp_path: Path, client: TestClient[Litestar]) -> Iterator[Any]:
    made: list[Device] = []

    def make(name: str, tokens: dict[str, Any]) -> Device:
        device = Device(tmp_path, name, client, tokens["access_token"])
        made.append(device)
        return device

    yield make
    for device in made:
        device.client.outbox.close()


def test_offline_actions_sync_with_outcomes_and_a_report(
    client: TestClient[Litestar], admin: dict[str, Any], devices: Any
) -> None:
    _set_price(client, admin, "EURUSD", "1.1000")
    trader = register_and_login(client)
    phone = devices("phone-1", trader)
    opened = phone.client.open("EURUSD", "buy", D("1"), ref_price=D("1.1001"), stop_loss=D("1.0950"))
    phone.client.modify(position_id_for(opened.action_id), stop_loss=D("1.0960"), take_profit=D("1.1100"))
    phone.client.set_settings({"theme": "dark", "paused": False})
    moved = phone.client.open("EURUSD", "sell", D("1"), ref_price=D("1.1200"), max_deviation=D("0.0010"))
    summary = phone.engine.sync_once()
    assert summary.in_sync, summary
    assert (summary.applied, summary.not_applied) == (3, 1)
    [entry] = phone.client.report()
    assert (entry.action.action_id, entry.code, entry.facts["current_price"]) == (
        moved.action_id, "rejected:price_moved", "1.1000",
    )  # fmt: skip
    state = phone.client.outbox.server_state()
    assert [(p.position_id, p.version, p.stop_loss) for p in state.positions] == [
        (position_id_for(opened.action_id), 2, D("1.0960")),
    ]
    assert state.settings == {"paused": False, "theme": "dark"}


def test_a_resend_is_a_duplicate_and_executes_once(
    client: TestClient[Litestar], admin: dict[str, Any], devices: Any
) -> None:
    _set_price(client, admin, "EURUSD", "1.1000")
    trader = register_and_login(client)
    phone = devices("phone-2", trader)
    action = phone.client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    request = PushRequest(device_id="phone-2", sent_at_device=action.created_at_device,
                          actions=[PushedAction(action=action, age_ms=0)])  # fmt: skip
    first = phone.transport.push(request).results[0]
    again = phone.transport.push(request).results[0]
    assert (first.code, again.code, again.original_code) == ("applied", "duplicate", "applied")
    assert again.server_seq == first.server_seq
    pulled = phone.transport.pull(PullRequest(device_id="phone-2"))
    assert len(pulled.state.positions) == 1, "one position, however many resends"


def test_sl_hit_by_the_price_feed_makes_a_later_close_a_noop(
    client: TestClient[Litestar], admin: dict[str, Any], devices: Any
) -> None:
    _set_price(client, admin, "XAUUSD", "2000")
    trader = register_and_login(client)
    phone = devices("phone-3", trader)
    opened = phone.client.open("XAUUSD", "buy", D("1"), ref_price=D("2000"), stop_loss=D("1990"))
    phone.engine.sync_once()
    phone.client.close(position_id_for(opened.action_id))  # recorded offline...
    assert _set_price(client, admin, "XAUUSD", "1985")["triggered"] == 1  # ...while the stop loss hits
    phone.engine.sync_once()
    [entry] = phone.client.report()
    assert (entry.code, entry.facts["close_reason"], entry.facts["close_price"]) == (
        "noop:already_closed", "stop_loss", "1985",
    )  # fmt: skip


def test_two_devices_of_one_user_first_applied_wins_and_both_converge(
    client: TestClient[Litestar], admin: dict[str, Any], devices: Any
) -> None:
    _set_price(client, admin, "EURUSD", "1.1000")
    trader = register_and_login(client)
    phone, laptop = devices("phone-4", trader), devices("laptop-4", trader)
    opened = phone.client.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    phone.engine.sync_once()
    laptop.engine.sync_once()
    position = position_id_for(opened.action_id)
    phone.client.modify(position, stop_loss=D("1.09"), take_profit=None)
    laptop.client.modify(position, stop_loss=D("1.08"), take_profit=None)
    laptop.client.set_settings({"risk": "0.5"})
    phone.client.set_settings({"risk": "1.0"})
    phone.engine.sync_once()
    laptop.engine.sync_once()
    phone.engine.sync_once()
    assert [e.code for e in laptop.client.report()] == ["rejected:target_changed"]
    assert phone.client.outbox.server_state() == laptop.client.outbox.server_state()
    assert laptop.client.outbox.server_state().settings == {"risk": "0.5"}


def test_a_device_syncs_only_for_its_own_user(client: TestClient[Litestar], devices: Any) -> None:
    alice, mallory = register_and_login(client), register_and_login(client)
    devices("shared-device", alice).engine.sync_once()
    stolen = devices("shared-device-copy", mallory)
    stolen.client.outbox.close()
    response = client.get("/api/sync/pull", params={"device_id": "shared-device"}, headers=mallory["headers"])
    assert response.status_code == 403
    assert response.json()["code"] == "device_not_yours"
    assert client.get("/api/sync/pull", params={"device_id": "x"}).status_code == 401


def test_invalid_pushes_name_the_field(client: TestClient[Litestar]) -> None:
    trader = register_and_login(client)
    body = {"device_id": "d1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": [], "extra": 1}
    response = client.post("/api/sync/push", json=body, headers=trader["headers"])
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    body.pop("extra")
    body["actions"] = [{"action": {"action_id": "not-a-uuid"}, "age_ms": 0}]
    response = client.post("/api/sync/push", json=body, headers=trader["headers"])
    assert response.status_code == 400


def test_quotes_are_for_platform_admins_and_validated(client: TestClient[Litestar], admin: dict[str, Any]) -> None:
    trader = register_and_login(client)
    response = client.put("/api/paper/quotes/EURUSD", json={"price": "1.1"}, headers=trader["headers"])
    assert response.status_code == 403
    for symbol, price in [("EURUSD", "-1"), ("EURUSD", "NaN"), ("EUR%20USD", "1.1")]:
        response = client.put(f"/api/paper/quotes/{symbol}", json={"price": price}, headers=admin["headers"])
        assert response.status_code == 400, (symbol, price, response.text)


def test_unreachable_server_keeps_everything_queued(tmp_path: Path) -> None:
    with httpx.Client(base_url="http://127.0.0.1:9", timeout=0.5) as http:  # discard port: refused
        device = Device(tmp_path, "lonely", http, "token")
        device.client.acknowledge("x")
        summary = device.engine.sync_once()
        assert summary.transport_error is not None
        assert summary.transport_error.startswith("offline")
        assert device.client.outbox.counts()["pending"] == 1
        device.client.outbox.close()


def test_concurrent_resends_over_a_real_loopback_server_execute_once(
    live_server: str, db_url: str, tmp_path: Path
) -> None:
    import threading

    from signalos_core.offline import SyncTransportError

    with httpx.Client(base_url=live_server, timeout=30) as http:
        admin = register_and_login(http)  # type: ignore[arg-type]  # same request API as the TestClient
        promote(db_url, admin["user_id"], "platform_admin")
        _set_price(http, admin, "EURUSD", "1.1000")  # type: ignore[arg-type]
        trader = register_and_login(http)  # type: ignore[arg-type]
        device = Device(tmp_path, "racer", http, trader["access_token"])
        actions = [device.client.open("EURUSD", "buy", D("1"), ref_price=D("1.1")) for _ in range(5)]
        request = PushRequest(device_id="racer", sent_at_device=actions[0].created_at_device,
                              actions=[PushedAction(action=a, age_ms=0) for a in actions])  # fmt: skip
        codes: list[str] = []
        errors: list[str] = []

        def push() -> None:
            try:
                codes.extend(r.code for r in device.transport.push(request).results)
            except SyncTransportError as exc:  # a lost race is a retryable 503, never a second execution
                errors.append(exc.cause)

        threads = [threading.Thread(target=push) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(cause.startswith("http_503") for cause in errors), errors
        assert codes.count("applied") == 5, codes
        assert set(codes) <= {"applied", "duplicate"}
        summary = device.engine.sync_once()  # the device's own sync reconciles everything
        assert summary.in_sync
        assert len(device.client.outbox.server_state().positions) == 5
        device.client.outbox.close()


def test_the_accounts_current_mode_decides_at_apply_time(
    client: TestClient[Litestar], admin: dict[str, Any], tmp_path: Path
) -> None:
    _set_price(client, admin, "EURUSD", "1.1000")
    trader = register_and_login(client)
    account = client.post(
        "/api/trading-accounts",
        json={"name": "Bootcamp", "broker": "The5ers", "platform": "MT5", "account_size": "100000"},
        headers=trader["headers"],
    ).json()["id"]
    # While offline the device queues an order without a stop-loss, then the account's mode is set to a profile
    # that requires one: the server applies the mode current at apply time, not the one the device saw.
    device = OfflineClient(Outbox(tmp_path / "laptop.db", device_id="laptop-1"))
    try:
        engine = SyncEngine(
            device.outbox, HttpSyncTransport(client, trader["access_token"], account_id=account), backoff=Backoff(0, 0)
        )
        naked = device.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"))
        covered = device.open("EURUSD", "buy", D("1"), ref_price=D("1.1000"), stop_loss=D("1.0950"))
        # Without a mode the server cannot check compliance: the push is refused as a whole and stays queued.
        assert engine.sync_once().in_sync is False
        mode = client.put(
            f"/api/trading-accounts/{account}/mode",
            json={"source": "builtin", "profile_id": "the5ers-bootcamp", "reason": "bought a Bootcamp"},
            headers=trader["headers"],
        )
        assert mode.status_code == 200, mode.text
        summary = engine.sync_once()
        assert (summary.applied, summary.not_applied) == (1, 1), summary
        [entry] = device.report()
        assert entry.action.action_id == naked.action_id
        # No stop-loss breaks both Bootcamp rules (SL required; risk at SL unbounded): either may name the refusal.
        assert entry.code in {
            "rejected:compliance:the5ers.bootcamp_stop_loss_required",
            "rejected:compliance:the5ers.bootcamp_max_risk_per_position",
        }
        assert covered.action_id not in {e.action.action_id for e in device.report()}
        # Both decisions are in the account's hash-chained audit trail, replayable like pre-trade checks.
        trail = client.get(f"/api/trading-accounts/{account}/audit", headers=trader["headers"]).json()["items"]
        synced = [r for r in trail if r["kind"] == "decision" and "offline sync" in (r.get("reason") or "")]
        assert sorted(r["outcome"] for r in synced) == ["allow", "deny"]
        assert (
            client.get(f"/api/trading-accounts/{account}/audit/verify", headers=trader["headers"]).json()["ok"] is True
        )
    finally:
        device.outbox.close()
    other = register_and_login(client)
    stranger = HttpSyncTransport(client, other["access_token"], account_id=account)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the transport maps the 404 to its own error type
        stranger.push(PushRequest(device_id="x-1", sent_at_device=naked.created_at_device, actions=[]))


@pytest.mark.parametrize("cursor", [str(2**63), str(2**64 + 1), "-1"])
def test_a_pull_cursor_past_64_bits_is_refused_naming_cursor(client: TestClient[Litestar], cursor: str) -> None:
    """The cursor is a 64-bit server sequence: larger is a 400 naming it (it was a 500 from the database driver)."""
    trader = register_and_login(client)
    response = client.get("/api/sync/pull", params={"device_id": "d1", "cursor": cursor}, headers=trader["headers"])
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]
    largest = client.get(
        "/api/sync/pull", params={"device_id": "d1", "cursor": str(2**63 - 1)}, headers=trader["headers"]
    )
    assert largest.status_code == 200, largest.text
    assert largest.json()["outcomes"] == []
    (documented,) = (
        p
        for p in client.get("/schema/openapi.json").json()["paths"]["/api/sync/pull"]["get"]["parameters"]
        if p["name"] == "cursor"
    )
    assert documented["schema"]["maximum"] == 2**63 - 1


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"device_id": "d1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": [], "x": 1}', "x"),
        (b'{"device_id": "d1", "actions": []}', "sent_at_device"),
        (b'{"device_id": "d 1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": []}', "device_id"),
        (
            b'{"device_id": "d1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": [{"action": {"seq": 1}}]}',
            "actions[0].action.action_id",
        ),
    ],
)
def test_a_refused_push_is_a_validation_problem_naming_the_field(
    client: TestClient[Litestar], content: bytes, field: str
) -> None:
    """Whatever refuses the whole batch is a 400 validation_error with `errors` naming the field (house rule)."""
    trader = register_and_login(client)
    headers = {**trader["headers"], "Content-Type": "application/json"}
    response = client.post("/api/sync/push", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == [field], body


_ACTION = '{"action": {"action_id": "%s", "device_id": "%s", "seq": %d}, "age_ms": 0}'


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ([("8d7e6a4e-7c4e-4b8e-9a51-0f3c2b1d9e11", "other", 1)], "actions[0].device_id"),
        (
            [("8d7e6a4e-7c4e-4b8e-9a51-0f3c2b1d9e11", "d1", 2), ("0b7e6a4e-7c4e-4b8e-9a51-0f3c2b1d9e12", "d1", 2)],
            "actions[1].seq",
        ),
    ],
)
def test_a_batch_inconsistent_between_its_parts_is_unprocessable(
    client: TestClient[Litestar], actions: list[tuple[str, str, int]], field: str
) -> None:
    """Rules JSON Schema cannot state (each action is the pushing device's, seq ascends): 422, nothing applied."""
    trader = register_and_login(client)
    items = ", ".join(_ACTION % action for action in actions)
    content = f'{{"device_id": "d1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": [{items}]}}'
    headers = {**trader["headers"], "Content-Type": "application/json"}
    response = client.post("/api/sync/push", content=content.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "unprocessable"
    assert [e["field"] for e in body["errors"]] == [field], body
    pulled = client.get("/api/sync/pull", params={"device_id": "d1"}, headers=trader["headers"])
    assert pulled.json()["outcomes"] == []


def test_the_push_body_is_documented(client: TestClient[Litestar]) -> None:
    """The document states the envelope and the identity every action needs; the example is accepted as is."""
    operation = client.get("/schema/openapi.json").json()["paths"]["/api/sync/push"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert operation["requestBody"]["required"] is True
    assert (sorted(schema["required"]), schema["additionalProperties"]) == (
        ["actions", "device_id", "sent_at_device"], False,
    )  # fmt: skip
    assert schema["properties"]["actions"]["maxItems"] == 1000
    action = schema["properties"]["actions"]["items"]["properties"]["action"]
    assert sorted(action["required"]) == ["action_id", "device_id", "seq"]
    trader = register_and_login(client)
    response = client.post("/api/sync/push", json=schema["examples"][0], headers=trader["headers"])
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []


def test_applied_synced_opens_are_reserved_like_pre_trade_checks(
    client: TestClient[Litestar], admin: dict[str, Any], tmp_path: Path
) -> None:
    """Opens of one batch are checked against each other, and the applied ones count for every later check until
    the broker's fill arrives; an allowed open that is refused afterwards (price moved) reserves nothing."""
    _set_price(client, admin, "EURUSD", "1.1000")
    trader = register_and_login(client)
    account = client.post(
        "/api/trading-accounts",
        json={"name": "Own", "broker": "Paper", "platform": "MT5", "account_size": "100000"},
        headers=trader["headers"],
    ).json()["id"]
    # A personal mode allowing at most 5 lots open (`gt`: exactly 5 is allowed).
    profile = ACME_YAML.replace("acme-challenge", "five-lots")
    assert client.post("/api/me/compliance-profiles", json={"yaml": profile}, headers=trader["headers"]).is_success
    mode = client.put(
        f"/api/trading-accounts/{account}/mode",
        json={"source": "personal", "profile_id": "five-lots", "reason": "my limits"},
        headers=trader["headers"],
    )
    assert mode.status_code == 200, mode.text
    device = OfflineClient(Outbox(tmp_path / "phone.db", device_id="phone-1"))
    try:
        engine = SyncEngine(
            device.outbox, HttpSyncTransport(client, trader["access_token"], account_id=account), backoff=Backoff(0, 0)
        )
        first = device.open("EURUSD", "buy", D("3"), ref_price=D("1.1000"), stop_loss=D("1.0950"))
        second = device.open("EURUSD", "buy", D("3"), ref_price=D("1.1000"), stop_loss=D("1.0950"))
        stale = device.open("EURUSD", "buy", D("1"), ref_price=D("1.2000"), stop_loss=D("1.1950"))
        summary = engine.sync_once()
        assert (summary.applied, summary.not_applied) == (1, 2), summary
        codes = {entry.action.action_id: entry.code for entry in device.report()}
        assert codes == {second.action_id: "rejected:compliance:acme.max_lots", stale.action_id: "rejected:price_moved"}
        assert first.action_id not in codes
    finally:
        device.outbox.close()

    def check(lots: str) -> bool:
        at = datetime.now(UTC).isoformat()
        order = {"symbol": "EURUSD", "side": "buy", "size": lots, "price": "1.1000", "stop_loss": "1.0950", "at": at}
        response = client.post(f"/api/trading-accounts/{account}/orders/check", json=order, headers=trader["headers"])
        assert response.status_code == 200, response.text
        allowed: bool = response.json()["allowed"]
        return allowed

    # The applied 3 lots are reserved (the stale 1 lot is not): 2 more fit, 3 more do not.
    assert check("2") is True
    assert check("3") is False


def test_a_seq_written_as_an_integral_float_is_rejected_alone(client: TestClient[Litestar]) -> None:
    """``7.0`` is an integer to JSON Schema (the document says `integer`): it identifies the action, which is
    answered ``rejected:invalid`` naming ``action.seq`` in a 200, instead of refusing the batch (fuzz gate)."""
    trader = register_and_login(client)
    content = (
        '{"device_id": "d1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": ['
        + _ACTION % ("8d7e6a4e-7c4e-4b8e-9a51-0f3c2b1d9e11", "d1", 7)
        + "]}"
    ).replace('"seq": 7', '"seq": 7.0')
    headers = {**trader["headers"], "Content-Type": "application/json"}
    response = client.post("/api/sync/push", content=content.encode(), headers=headers)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert (result["seq"], result["code"]) == (7, "rejected:invalid"), result
    assert "action.seq" in response.text
    fractional = client.post("/api/sync/push", content=content.replace("7.0", "7.5").encode(), headers=headers)
    assert fractional.status_code == 400, fractional.text
    assert [e["field"] for e in fractional.json()["errors"]] == ["actions[0].action.seq"]
