"""Never block the queue on one bad action, upstream signal cancellation and device forks, over real HTTP on
SQLite and PostgreSQL, driven by the library's device side."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from service.sync.transport import HttpSyncTransport
from signalos_core.offline import (
    Backoff,
    DeviceForkError,
    OfflineClient,
    Outbox,
    PullRequest,
    PushedAction,
    PushRequest,
    SyncEngine,
    SyncTransportError,
)
from tests.service.conftest import TEST_PASSWORD, bearer, promote, register_and_login

D = Decimal


@pytest.fixture
def admin(client: TestClient[Litestar], db_url: str) -> dict[str, Any]:
    tokens = register_and_login(client)
    promote(db_url, tokens["user_id"], "platform_admin")
    response = client.put("/api/paper/quotes/EURUSD", json={"price": "1.1000"}, headers=tokens["headers"])
    assert response.status_code == 200, response.text
    return tokens


@pytest.fixture
def outboxes(tmp_path: Path) -> Iterator[Any]:
    opened: list[Outbox] = []

    def make(name: str, device_id: str | None = None) -> OfflineClient:
        outbox = Outbox(tmp_path / f"{name}.db", device_id=device_id or name)
        opened.append(outbox)
        return OfflineClient(outbox)

    yield make
    for outbox in opened:
        outbox.close()


def _engine(device: OfflineClient, transport: Any) -> SyncEngine:
    return SyncEngine(device.outbox, transport, backoff=Backoff(0, 0))


def _push_doc(device: OfflineClient, count: int) -> dict[str, Any]:
    actions = [device.open("EURUSD", "buy", D("1"), ref_price=D("1.1")) for _ in range(count)]
    return {
        "device_id": device.outbox.device_id,
        "sent_at_device": actions[0].created_at_device.isoformat(),
        "actions": [{"action": msgspec.to_builtins(a), "age_ms": 0} for a in actions],
    }


def test_an_invalid_action_is_answered_alone_and_the_rest_applies(
    client: TestClient[Litestar], admin: dict[str, Any], outboxes: Any
) -> None:
    trader = register_and_login(client)
    phone = outboxes("phone-r1")
    doc = _push_doc(phone, 4)
    doc["actions"][1]["action"]["payload"]["volume"] = "0"
    doc["actions"][2]["action"]["payload"]["type"] = "open_with_trailing_stop"  # from a newer app version
    response = client.post("/api/sync/push", content=json.dumps(doc), headers=trader["headers"])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["code"] for r in results] == [
        "applied", "rejected:invalid", "rejected:client_upgrade_required", "applied",
    ]  # fmt: skip
    assert results[1]["facts"] == {"field": "action.payload"}
    assert "volume must be a finite decimal > 0" in results[1]["message"]
    assert "open_with_trailing_stop" in results[2]["message"]
    # The rejections are recorded: the device's cursor advances past them, and a resend is a duplicate.
    pulled = HttpSyncTransport(client, trader["access_token"]).pull(PullRequest(device_id="phone-r1"))
    assert [o.code for o in pulled.outcomes] == [r["code"] for r in results]
    assert pulled.cursor == max(r["server_seq"] for r in results)
    again = client.post("/api/sync/push", content=json.dumps(doc), headers=trader["headers"]).json()["results"]
    assert [(r["code"], r["original_code"]) for r in again][1:3] == [
        ("duplicate", "rejected:invalid"), ("duplicate", "rejected:client_upgrade_required"),
    ]  # fmt: skip
    assert len(pulled.state.positions) == 2
    # What cannot be attributed to one action still refuses the batch, naming the field.
    doc["actions"][0]["action"]["seq"] = "one"
    refused = client.post("/api/sync/push", content=json.dumps(doc), headers=trader["headers"])
    assert refused.status_code == 400
    assert refused.json()["code"] == "validation_error"
    assert "actions[0]" in refused.json()["detail"]


class _StrictProxy(BaseHTTPRequestHandler):
    """An older/stricter server in front of the real one: refuses a whole push with 400 when any action in it
    opens ``BADSYM``; forwards everything else to the real service."""

    upstream = ""

    def _forward(self, body: bytes | None) -> None:
        if body is not None and b'"BADSYM"' in body:
            status, content = 400, json.dumps({
                "type": "about:blank", "title": "Validation error", "status": 400, "code": "validation_error",
                "detail": "symbol BADSYM is not tradable",
            }).encode()  # fmt: skip
        else:
            headers = {"Authorization": self.headers["Authorization"], "Content-Type": "application/json"}
            answer = httpx.request(self.command, self.upstream + self.path, content=body, headers=headers, timeout=30)
            status, content = answer.status_code, answer.content
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json" if status >= 400 else "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_POST(self) -> None:
        self._forward(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self._forward(None)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return


def test_a_batch_refused_as_a_whole_is_bisected_and_only_the_offender_is_rejected(
    live_server: str, db_url: str, tmp_path: Path
) -> None:
    handler = type("Proxy", (_StrictProxy,), {"upstream": live_server})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=live_server, timeout=30) as direct:
            admin = register_and_login(direct)  # type: ignore[arg-type]  # same request API as the TestClient
            promote(db_url, admin["user_id"], "platform_admin")
            admin = _relogin(direct, admin)
            assert direct.put("/api/paper/quotes/EURUSD", json={"price": "1.1"}, headers=admin["headers"]).is_success
            trader = register_and_login(direct)  # type: ignore[arg-type]
        device = OfflineClient(Outbox(tmp_path / "bisect.db", device_id="bisect-1"))
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy.server_address[1]}", timeout=30) as http:
            for index in range(12):
                device.open("BADSYM" if index == 7 else "EURUSD", "buy", D("1"), ref_price=D("1.1"))
            summary = _engine(device, HttpSyncTransport(http, trader["access_token"])).sync_once()
        assert summary.in_sync, summary
        assert (summary.applied, summary.refused, summary.not_applied) == (11, 1, 1)
        [entry] = device.report()
        assert (entry.action.seq, entry.code) == (8, "rejected:invalid")
        assert entry.facts["problem_code"] == "validation_error"
        assert entry.facts["problem_detail"] == "symbol BADSYM is not tradable"
        assert len(device.outbox.server_state().positions) == 11
        device.outbox.close()
    finally:
        proxy.shutdown()
        proxy.server_close()


def _relogin(http: Any, tokens: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/api/auth/login", json={"email": tokens["email"], "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    fresh: dict[str, Any] = {**tokens, **response.json()}
    fresh["headers"] = bearer(fresh)
    return fresh


def test_401_refreshes_the_token_and_never_rejects(
    client: TestClient[Litestar], admin: dict[str, Any], outboxes: Any
) -> None:
    trader = register_and_login(client)
    phone = outboxes("phone-r2")
    phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    stale = _engine(phone, HttpSyncTransport(client, "expired-token"))
    summary = stale.sync_once()
    assert summary.transport_error is not None
    assert summary.transport_error.startswith("http_401")
    assert (phone.outbox.counts()["pending"], phone.report()) == (1, [])
    refreshed: list[str] = []

    def refresh() -> str:
        refreshed.append("once")
        return str(trader["access_token"])

    summary = _engine(phone, HttpSyncTransport(client, "expired-token", refresh=refresh)).sync_once()
    assert summary.in_sync, summary
    assert (summary.applied, refreshed) == (1, ["once"]), "the new token is kept for the following calls"


def test_an_upstream_cancel_rejects_later_opens_of_that_signal(
    client: TestClient[Litestar], admin: dict[str, Any], outboxes: Any
) -> None:
    trader = register_and_login(client)
    account = client.post(
        "/api/trading-accounts",
        json={"name": "Own", "broker": "Paper", "platform": "MT5", "account_size": "10000"},
        headers=trader["headers"],
    ).json()["id"]
    phone = outboxes("phone-r3")
    engine = _engine(phone, HttpSyncTransport(client, trader["access_token"]))
    early = phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), signal_id="gold-vip:9001")
    assert engine.sync_once().applied == 1
    late = phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), signal_id="gold-vip:9001")
    other = phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1"), signal_id="gold-vip:9002")
    url = "/api/sync/signals/gold-vip:9001/cancel"
    assert client.post(url, json={"account_id": account}, headers=trader["headers"]).status_code == 403
    response = client.post(url, json={"account_id": account}, headers=admin["headers"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["signal_id"], body["user_id"], body["already_cancelled"]) == (
        "gold-vip:9001", trader["user_id"], False,
    )  # fmt: skip
    again = client.post(url, json={"account_id": account}, headers=admin["headers"]).json()
    assert (again["already_cancelled"], again["cancelled_at"]) == (True, body["cancelled_at"])
    summary = engine.sync_once()
    assert (summary.applied, summary.not_applied) == (1, 1), summary
    [entry] = phone.report()
    assert (entry.action.action_id, entry.code, entry.facts) == (
        late.action_id, "rejected:signal_cancelled", {"signal_id": "gold-vip:9001"},
    )  # fmt: skip
    assert other.action_id != entry.action.action_id
    assert phone.outbox.server_state().cancelled_signals == ["gold-vip:9001"]
    assert early.action_id not in {e.action.action_id for e in phone.report()}, "applied before the cancel"
    bad = [
        client.post(url, json={"account_id": "00000000-0000-0000-0000-000000000000"}, headers=admin["headers"]),
        client.post(url, json={"account_id": account, "extra": 1}, headers=admin["headers"]),
        client.post("/api/sync/signals/bad%20id/cancel", json={"account_id": account}, headers=admin["headers"]),
    ]
    assert [r.status_code for r in bad] == [404, 400, 400]


def test_firm_admins_cancel_signals_for_their_firms_accounts_only(
    client: TestClient[Litestar], admin: dict[str, Any], outboxes: Any
) -> None:
    firms = [
        client.post("/api/admin/firms", json={"name": f"Firm {n}"}, headers=admin["headers"]).json()["id"]
        for n in range(2)
    ]
    firm_admin, stranger, trader = (register_and_login(client) for _ in range(3))
    for who, firm in ((firm_admin, firms[0]), (stranger, firms[1])):
        role = client.put(f"/api/admin/users/{who['user_id']}/role", json={"role": "firm_admin", "firm_id": firm},
                          headers=admin["headers"])  # fmt: skip
        assert role.status_code == 200, role.text
    firm_admin, stranger = _relogin(client, firm_admin), _relogin(client, stranger)
    funded = client.post(
        "/api/trading-accounts",
        json={"name": "Funded", "broker": "Acme", "platform": "MT5", "account_size": "100000",
              "owner_id": trader["user_id"], "firm_id": firms[0]},
        headers=firm_admin["headers"],
    )  # fmt: skip
    assert funded.status_code == 201, funded.text
    url = "/api/sync/signals/acme:77/cancel"
    assert client.post(url, json={"account_id": funded.json()["id"]}, headers=stranger["headers"]).status_code == 404
    response = client.post(url, json={"account_id": funded.json()["id"]}, headers=firm_admin["headers"])
    assert response.status_code == 200, response.text
    phone = outboxes("phone-r4")
    phone.open("EURUSD", "sell", D("1"), ref_price=D("1.1"), signal_id="acme:77")
    assert _engine(phone, HttpSyncTransport(client, trader["access_token"])).sync_once().in_sync
    assert [e.code for e in phone.report()] == ["rejected:signal_cancelled"]


def test_a_second_installation_with_the_same_device_id_gets_device_fork(
    client: TestClient[Litestar], admin: dict[str, Any], outboxes: Any
) -> None:
    trader = register_and_login(client)
    original = outboxes("tablet-original", device_id="tablet-r5")
    original.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))
    assert _engine(original, HttpSyncTransport(client, trader["access_token"])).sync_once().in_sync
    clone = outboxes("tablet-restored", device_id="tablet-r5")  # a restored backup: seq starts at 1 again
    copied = clone.open("EURUSD", "sell", D("1"), ref_price=D("1.1"))
    summary = _engine(clone, HttpSyncTransport(client, trader["access_token"])).sync(max_rounds=3, sleep=lambda _: 0)
    assert summary.device_forked
    assert clone.outbox.counts()["pending"] == 1, "kept for the user; nothing rejected"
    request = PushRequest(device_id="tablet-r5", sent_at_device=copied.created_at_device,
                          actions=[PushedAction(action=copied, age_ms=0)])  # fmt: skip
    raw = client.post("/api/sync/push", content=msgspec.json.encode(request), headers=trader["headers"])
    assert raw.status_code == 409
    assert raw.headers["content-type"].startswith("application/problem+json")
    assert (raw.json()["code"], raw.json()["device_id"], raw.json()["seq"]) == ("device_fork", "tablet-r5", 1)
    with pytest.raises(DeviceForkError) as info:
        HttpSyncTransport(client, trader["access_token"]).push(request)
    assert (info.value.device_id, info.value.seq) == ("tablet-r5", 1)
    assert isinstance(info.value, SyncTransportError)
    state = HttpSyncTransport(client, trader["access_token"]).pull(PullRequest(device_id="tablet-r5")).state
    assert [p.side for p in state.positions] == ["buy"], "nothing of the forked push was applied"
