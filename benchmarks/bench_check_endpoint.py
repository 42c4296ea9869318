"""Benchmark: the pre-trade check endpoint against trivial endpoints of the same app, same server, same client.

Starts ``uvicorn`` (one worker, loopback) on a fresh, migrated database, prepares a trader with an own account
in a personal mode (the Acme profile of the docs: daily loss, max loss, max lots, profit target), then drives
each endpoint for ``--seconds`` with ``--concurrency`` keep-alive connections from an asyncio/httpx load
client in this process, and prints throughput, p50 and p99 and the ratio of the check endpoint's throughput
to each baseline:

* ``GET /health`` (no auth, no database: the cheapest route of the app),
* ``GET /api/me`` (the same authentication and guards as the check, one database read).

Each check re-sends the same order id, so every check is a full write: decode the state, evaluate, write
the reservation with its compare-and-set, append the hash-chained audit record, commit (SQLite runs with
``synchronous=FULL``: every commit is an fsync).

Run:  .venv/bin/python benchmarks/bench_check_endpoint.py [--postgres URL] [--seconds 8] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILE = """\
id: bench-acme
version: "1"
effective_from: 2026-01-01
parameters:
  account_size: {type: money, default: 100000}
day_boundary: {timezone: Europe/Prague, at: "00:00"}
rules:
  - {id: acme.max_daily_loss, kind: daily_loss, outcome: lock, breach_when: lt, params: {pct: 5}, warn_at: [0.8]}
  - {id: acme.max_loss, kind: max_loss, outcome: breach, breach_when: lt, params: {pct: 10}}
  - {id: acme.max_lots, kind: max_position_size, outcome: deny, breach_when: gt, params: {max: 5}}
  - {id: acme.profit_target, kind: profit_target, outcome: objective, params: {pct: 10}}
"""
PASSWORD = "benchmark password 123"  # noqa: S105 - a throwaway user in a scratch database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _create_pg_database(admin_url: str) -> str:
    from sqlalchemy.engine import make_url

    from tests.service.conftest import _admin_execute

    name = f"signalos_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(admin_url: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    from tests.service.conftest import _admin_execute

    asyncio.run(_admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


@contextlib.contextmanager
def server(database_url: str, var_dir: Path) -> Iterator[str]:
    """A migrated database and ``uvicorn service.app:create_app --factory`` on a free loopback port."""
    from service.db.migrate import upgrade

    upgrade(database_url)
    port = _free_port()
    env = {
        **os.environ,
        "SIGNALOS_DATABASE_URL": database_url,
        "SIGNALOS_JWT_SECRET": secrets.token_urlsafe(48),
        "SIGNALOS_DATA_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SIGNALOS_ARGON2_TIME_COST": "1",
        "SIGNALOS_ARGON2_MEMORY_KIB": "8",
        "SIGNALOS_ARGON2_PARALLELISM": "1",
        "SIGNALOS_RATE_LIMIT_PER_MINUTE": "0",
        "SIGNALOS_LOG_LEVEL": "WARNING",
        "SIGNALOS_VAR_DIR": str(var_dir),
        "SIGNALOS_COMPLIANCE_CLOCK_INTERVAL": "0",
    }
    command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - fixed command line
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def prepare(base: str, accounts: int) -> tuple[dict[str, str], list[str]]:
    """A trader with ``accounts`` own accounts in the personal benchmark mode; returns headers and account ids."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/api/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        tokens = client.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        client.post("/api/me/compliance-profiles", json={"yaml": PROFILE}, headers=headers).raise_for_status()
        ids = []
        for _ in range(accounts):
            account = client.post(
                "/api/trading-accounts",
                json={"name": "bench", "broker": "b", "platform": "MT5", "account_size": "100000"},
                headers=headers,
            ).json()
            client.put(
                f"/api/trading-accounts/{account['id']}/mode",
                json={"source": "personal", "profile_id": "bench-acme", "reason": "benchmark"},
                headers=headers,
            ).raise_for_status()
            ids.append(account["id"])
        return headers, ids


async def drive(
    base: str, method: str, paths: list[str], headers: dict[str, str], body: Any, *, seconds: float, concurrency: int
) -> dict[str, float]:
    """Closed-loop load: ``concurrency`` workers send back-to-back requests for ``seconds``; worker ``i`` uses
    ``paths[i % len(paths)]`` (one account per worker spreads the check load over accounts)."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        stop = time.perf_counter() + seconds

        async def worker(path: str) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(paths[i % len(paths)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors,
        "rps": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def run(database_url: str, label: str, seconds: float, concurrency: int) -> dict[str, dict[str, float]]:
    """Measure the endpoints on one backend (check on one account, then one account per connection)."""
    with tempfile.TemporaryDirectory() as tmp, server(database_url, Path(tmp)) as base:
        headers, account_ids = prepare(base, concurrency)
        import datetime as dt

        order = {"id": "bench-order", "symbol": "EURUSD", "side": "buy", "size": "1",
                 "at": dt.datetime.now(dt.UTC).isoformat(), "stop_loss": "1.05", "price": "1.08"}  # fmt: skip
        checks = [f"/api/trading-accounts/{account_id}/orders/check" for account_id in account_ids]
        with httpx.Client(base_url=base, headers=headers) as client:
            decision = client.post(checks[0], json=order).json()
            assert decision["allowed"] is True, decision
        results: dict[str, dict[str, float]] = {}
        # Warm up every route, then measure (same server, same client, one after the other).
        for name, method, paths, body in (
            ("health", "GET", ["/health"], None),
            ("me", "GET", ["/api/me"], None),
            ("check (1 account)", "POST", checks[:1], order),
            (f"check ({len(checks)} accounts)", "POST", checks, order),
        ):
            asyncio.run(drive(base, method, paths, headers, body, seconds=1.0, concurrency=concurrency))
            results[name] = asyncio.run(
                drive(base, method, paths, headers, body, seconds=seconds, concurrency=concurrency)
            )
    print(f"\n## {label}  ({seconds:.0f} s per endpoint, {concurrency} connections, 1 uvicorn worker)")
    print(f"{'endpoint':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, row in results.items():
        print(f"{name:<34}{row['rps']:>10.1f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['errors']:>8.0f}")
    for name in [n for n in results if n.startswith("check")]:
        for baseline in ("health", "me"):
            ratio = results[name]["rps"] / results[baseline]["rps"]
            print(f"{name} / {baseline:<8} throughput ratio: {ratio:.2f}  (goal >= 0.70)")
    return results


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", default=os.environ.get("SIGNALOS_TEST_POSTGRES_URL"),
                        help="admin URL of a PostgreSQL server (a scratch database is created and dropped)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite (WAL, synchronous=FULL)", args.seconds, args.concurrency)
    if args.postgres:
        url = _create_pg_database(args.postgres)
        try:
            run(url, "PostgreSQL", args.seconds, args.concurrency)
        finally:
            _drop_pg_database(args.postgres, url)


if __name__ == "__main__":
    main()
