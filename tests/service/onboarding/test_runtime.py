"""Service runtime: private targets refused by default, tests never block other requests, concurrent retries."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from service.app import create_app
from tests.core.onboarding.conftest import BRIDGE_LOGIN, BRIDGE_PASSWORD, BRIDGE_SERVER, LoopbackServers
from tests.service.conftest import make_settings, register_and_login


def bridge(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "mt_bridge",
        "host": "127.0.0.1",
        "port": port,
        "platform": "mt5",
        "login": BRIDGE_LOGIN,
        "password": BRIDGE_PASSWORD,
        "server": BRIDGE_SERVER,
        **extra,
    }


@pytest.mark.parametrize(("allow", "status"), [(None, "wrong_server"), ("1", "ok")])
def test_private_targets_follow_the_settings(
    db_url: str, tmp_path: Path, loopback: LoopbackServers, allow: str | None, status: str
) -> None:
    extra = {} if allow is None else {"SIGNALOS_ONBOARDING_ALLOW_PRIVATE_TARGETS": allow}
    settings = make_settings(db_url, tmp_path, **extra)
    with TestClient(app=create_app(settings)) as client:
        user = register_and_login(client)
        response = client.post(
            "/api/onboarding/connections/test",
            json={"step_id": "broker", "answers": bridge(loopback.bridge())},
            headers=user["headers"],
        )
    assert response.json()["status"] == status


def test_a_stalled_test_does_not_block_other_requests(
    client: TestClient[Litestar], trader: dict[str, Any], loopback: LoopbackServers
) -> None:
    stall = loopback.bridge("stall")
    started = threading.Event()

    def slow() -> Any:
        started.set()
        return client.post(
            "/api/onboarding/connections/test",
            json={"step_id": "broker", "answers": bridge(stall, timeout_s=1.5)},
            headers=trader["headers"],
        ).json()

    with ThreadPoolExecutor(max_workers=3) as pool:
        pending = [pool.submit(slow) for _ in range(2)]
        started.wait(5)
        time.sleep(0.2)  # the stalled tests are in flight now
        begin = time.perf_counter()
        state = client.get("/api/onboarding", headers=trader["headers"])
        quick = time.perf_counter() - begin
        results = [future.result(timeout=10) for future in pending]
    assert state.status_code == 200
    assert quick < 1.0, quick
    assert [r["status"] for r in results] == ["timeout", "timeout"]


def test_concurrent_retries_with_one_key_apply_once(client: TestClient[Litestar], trader: dict[str, Any]) -> None:
    answers = {"display_name": "Alice", "timezone": "UTC"}
    headers = {**trader["headers"], "Idempotency-Key": "same-key-everywhere"}
    client.get("/api/onboarding", headers=trader["headers"])

    def attempt(_: int) -> Any:
        return client.post("/api/onboarding/steps/profile", json={"answers": answers}, headers=headers)

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(attempt, range(4)))
    codes = sorted(r.status_code for r in responses)
    # every attempt either applied it, replayed it, or was told to retry; never a 500, never applied twice
    assert set(codes) <= {200, 409}
    assert 200 in codes
    applied = [r.json() for r in responses if r.status_code == 200 and not r.json()["replayed"]]
    assert len(applied) <= 1 or all(a["step"]["completed_at"] == applied[0]["step"]["completed_at"] for a in applied)
    retry = client.post("/api/onboarding/steps/profile", json={"answers": answers}, headers=headers)
    assert retry.status_code == 200
    assert retry.json()["replayed"] is True


def test_one_user_cannot_hold_every_test_slot(
    client: TestClient[Litestar], trader: dict[str, Any], loopback: LoopbackServers
) -> None:
    stall, good = loopback.bridge("stall"), loopback.bridge()
    other = register_and_login(client)

    def run(user: dict[str, Any], port: int) -> Any:
        return client.post(
            "/api/onboarding/connections/test",
            json={"step_id": "broker", "answers": bridge(port, timeout_s=1.5)},
            headers=user["headers"],
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        mine = [pool.submit(run, trader, stall) for _ in range(3)]
        time.sleep(0.5)
        theirs = run(other, good)
        codes = sorted(future.result(timeout=10).status_code for future in mine)
    assert codes == [200, 200, 429]
    assert theirs.status_code == 200
    assert theirs.json()["status"] == "ok"
    # the slots are released afterwards
    assert run(trader, good).json()["status"] == "ok"
