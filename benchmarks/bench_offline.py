"""Offline queue and sync costs, each against a baseline measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_offline.py [--enqueues N] [--actions N] [--batch N] [--dir PATH]``.

1. Enqueue latency: ``OfflineClient`` recording an action (WAL, ``synchronous=FULL`` for order intents) vs the same
   kind recorded with ``NORMAL`` (an outbox that relaxes it), vs a bare durable ``INSERT`` of the same JSON bytes
   in its own transaction with the same pragmas (the floor any durable queue pays).
2. Library-level sync apply throughput: ``SyncServer.push`` of a mixed backlog (opens, modifies, closes, settings,
   acks) against ``SQLiteServerStore`` + ``PaperBroker``, one transaction per batch, vs plain inserts of the same
   action rows into an SQLite table in batches of the same size with the same pragmas.
3. End-to-end library sync: ``SyncEngine`` draining a device outbox through ``LocalTransport`` (JSON wire format).

4. HTTP sync throughput (``--http``, on by default): the service (uvicorn on loopback, one worker) applying
   pushed batches through ``POST /api/sync/push`` on SQLite and, when ``SIGNALOS_TEST_POSTGRES_URL`` (or
   ``--postgres URL``) is set, PostgreSQL; baseline: plain inserts of the same action rows into the same database
   through the same async driver, in batches of the same size, one transaction per batch.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from signalos_core.offline import (
    Action,
    LocalTransport,
    OfflineClient,
    Outbox,
    PaperBroker,
    PushedAction,
    PushRequest,
    SimpleLimits,
    SQLiteServerStore,
    SyncEngine,
    SyncServer,
    position_id_for,
)

D = Decimal


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _baseline_db(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE IF NOT EXISTS row (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, body BLOB)")
    return db


def bench_enqueue(root: Path, n: int) -> None:
    """Per-action latency of recording an intent, FULL vs NORMAL, with a bare-insert baseline."""
    print(f"\n## Enqueue latency ({n} actions each, committed before returning)")
    print(f"{'case':<44} {'p50 µs':>9} {'p99 µs':>9} {'per s':>8}")
    results: dict[str, float] = {}
    full = OfflineClient(Outbox(root / "full.db", device_id="bench-full"))
    normal = OfflineClient(Outbox(root / "normal.db", device_id="bench-normal", relaxed_kinds=("ack",)))
    strict = OfflineClient(Outbox(root / "strict.db", device_id="bench-strict", relaxed_kinds=()))
    base_full = _baseline_db(root / "base-full.db", "FULL")
    base_normal = _baseline_db(root / "base-normal.db", "NORMAL")
    body = msgspec.json.encode(full.open("EURUSD", "buy", D("1"), ref_price=D("1.1")))

    def bare(db: sqlite3.Connection) -> Callable[[], None]:
        def run() -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO row (id, body) VALUES (?, ?)", (str(uuid.uuid4()), body))
            db.execute("COMMIT")

        return run

    cases: list[tuple[str, Callable[[], object]]] = [
        ("open intent (FULL)", lambda: full.open("EURUSD", "buy", D("1"), ref_price=D("1.1"))),
        ("ack, strict outbox (FULL)", lambda: strict.acknowledge("news")),
        ("ack, relaxed outbox (NORMAL)", lambda: normal.acknowledge("news")),
        ("baseline: bare INSERT+COMMIT (FULL)", bare(base_full)),
        ("baseline: bare INSERT+COMMIT (NORMAL)", bare(base_normal)),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    gc.disable()
    try:
        for _ in range(n):  # interleaved so load spikes on the shared machine hit every case alike
            for name, call in cases:
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1e6)
    finally:
        gc.enable()
    for name, _ in cases:
        p50, p99 = _percentiles(samples[name])
        results[name] = p50
        print(f"{name:<44} {p50:>9.0f} {p99:>9.0f} {1e6 / p50:>8.0f}")
    print(
        f"ratios (p50): FULL/NORMAL ack {results['ack, strict outbox (FULL)'] / results['ack, relaxed outbox (NORMAL)']:.1f}x;"
        f" open intent / bare FULL insert {results['open intent (FULL)'] / results['baseline: bare INSERT+COMMIT (FULL)']:.2f}x;"
        f" NORMAL ack / bare NORMAL insert"
        f" {results['ack, relaxed outbox (NORMAL)'] / results['baseline: bare INSERT+COMMIT (NORMAL)']:.2f}x"
    )
    for client in (full, normal, strict):
        client.outbox.close()
    base_full.close()
    base_normal.close()


def _backlog(n: int, device: str, t0: datetime) -> Iterator[Action]:
    """A realistic mix: every 5 actions = open, modify, close of that position, a settings change, an ack."""
    seq = 0

    def make(**fields: object) -> Action:
        nonlocal seq
        seq += 1
        return Action(action_id=uuid.uuid4(), device_id=device, seq=seq, created_at_device=t0,  # type: ignore[arg-type]
                      expires_at=t0 + timedelta(hours=1), **fields)  # fmt: skip

    from signalos_core.offline import AckPayload, ClosePayload, ModifyPayload, OpenPayload, SettingsPayload

    while seq < n:
        opened = make(kind="open", payload=OpenPayload(symbol="EURUSD", side="buy", volume=D("1")),
                      ref_price=D("1.1"), max_deviation=D("0.01"))  # fmt: skip
        yield opened
        position = position_id_for(opened.action_id)
        yield make(kind="modify", payload=ModifyPayload(stop_loss=D("1.05")), target=position, expected_version=1,
                   depends_on=(opened.action_id,))  # fmt: skip
        yield make(kind="close", payload=ClosePayload(), target=position, expected_version=2)
        yield make(kind="settings", payload=SettingsPayload(changes={"risk": str(seq)}))
        yield make(kind="ack", payload=AckPayload(subject=f"s{seq}"))


def bench_apply(root: Path, n: int, batch: int) -> None:
    """Server-side apply throughput of the library vs plain inserts of the same rows."""
    print(f"\n## Library sync apply ({n} actions, batches of {batch}, one transaction per batch)")
    t0 = datetime.now(UTC)
    actions = list(_backlog(n, "bench-device", t0))[:n]
    batches = [actions[i : i + batch] for i in range(0, len(actions), batch)]
    rows: list[tuple[str, bytes]] = [(str(a.action_id), msgspec.json.encode(a)) for a in actions]
    print(f"{'case':<52} {'seconds':>8} {'actions/s':>10}")
    for synchronous in ("FULL", "NORMAL"):
        store = SQLiteServerStore(root / f"server-{synchronous}.db", synchronous=synchronous)
        server = SyncServer(store, PaperBroker({"EURUSD": D("1.1")}), SimpleLimits())
        requests = [
            PushRequest(device_id="bench-device", sent_at_device=t0,
                        actions=[PushedAction(action=a, age_ms=0) for a in chunk])
            for chunk in batches
        ]  # fmt: skip
        started = time.perf_counter()
        applied = 0
        for request in requests:
            applied += sum(r.code in ("applied", "noop:already_closed") for r in server.push("u", request).results)
        library = time.perf_counter() - started
        assert applied == n, f"only {applied} of {n} applied"
        store.close()

        db = _baseline_db(root / f"plain-{synchronous}.db", synchronous)
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO row (id, body) VALUES (?, ?)", rows[start : start + batch])
            db.execute("COMMIT")
        plain = time.perf_counter() - started
        db.close()
        print(f"{'SyncServer.push, SQLiteServerStore (' + synchronous + ')':<52} {library:>8.2f} {n / library:>10.0f}")
        print(f"{'baseline: plain inserts of the rows (' + synchronous + ')':<52} {plain:>8.2f} {n / plain:>10.0f}")
        print(f"ratio ({synchronous}): library apply is {library / plain:.1f}x the plain-insert time")


def bench_end_to_end(root: Path, n: int, batch: int) -> None:
    """A device outbox drained through the JSON wire format into the library server."""
    print(f"\n## End-to-end library sync ({n} queued actions, SyncEngine + LocalTransport)")
    t0 = datetime.now(UTC)
    outbox = Outbox(root / "device.db", device_id="bench-e2e")
    actions = list(_backlog(n, "bench-e2e", t0))[:n]
    for action in actions:  # setup (enqueue latency is measured above)
        outbox.enqueue(action.kind, lambda seq, a=action: msgspec.structs.replace(a, seq=seq))  # type: ignore[misc]
    store = SQLiteServerStore(root / "e2e-server.db")
    engine = SyncEngine(outbox, LocalTransport(SyncServer(store, PaperBroker({"EURUSD": D("1.1")}), SimpleLimits()),
                                              "u"), batch_size=batch)  # fmt: skip
    started = time.perf_counter()
    summary = engine.sync_once()
    drained = time.perf_counter() - started
    assert summary.in_sync, summary
    print(f"sync: {drained:.2f} s ({n / drained:.0f} actions/s); applied {summary.applied},"
          f" not applied {summary.not_applied}")  # fmt: skip
    outbox.close()
    store.close()


def _serve(url: str, root: Path) -> tuple[str, object]:
    """Migrate ``url``, start the app on a free loopback port in a thread; returns its base URL and the server."""
    import base64
    import secrets
    import socket
    import threading

    import uvicorn

    from service.app import create_app
    from service.db.migrate import upgrade
    from service.settings import Settings

    upgrade(url)
    settings = Settings.from_env({
        "SIGNALOS_DATABASE_URL": url, "SIGNALOS_JWT_SECRET": secrets.token_urlsafe(48),
        "SIGNALOS_DATA_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SIGNALOS_ARGON2_TIME_COST": "1", "SIGNALOS_ARGON2_MEMORY_KIB": "8", "SIGNALOS_ARGON2_PARALLELISM": "1",
        "SIGNALOS_RATE_LIMIT_PER_MINUTE": "0", "SIGNALOS_LOG_LEVEL": "WARNING", "SIGNALOS_VAR_DIR": str(root / "var"),
    })  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=sock.getsockname()[1],
                                           log_config=None, access_log=False))  # fmt: skip
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


async def _plain_inserts(url: str, rows: list[tuple[str, bytes]], batch: int) -> float:
    from sqlalchemy import Column, LargeBinary, MetaData, String, Table

    from service.db.engine import create_engine

    table = Table(
        "bench_plain_row", MetaData(), Column("id", String(36), primary_key=True), Column("body", LargeBinary)
    )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.create, checkfirst=True)
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            async with engine.begin() as connection:
                await connection.execute(table.insert(), [{"id": i, "body": b} for i, b in rows[start : start + batch]])
        return time.perf_counter() - started
    finally:
        await engine.dispose()


def bench_http(root: Path, n: int, batch: int, postgres: str | None) -> None:
    """Actions applied per second through the HTTP service vs plain inserts, per database."""
    import asyncio

    import httpx

    from service.sync.transport import HttpSyncTransport

    print(f"\n## HTTP sync throughput ({n} actions, batches of {batch}, uvicorn on loopback)")
    print(f"{'database':<12} {'push s':>8} {'actions/s':>10} {'plain s':>8} {'rows/s':>9} {'ratio':>7}")
    targets = [("SQLite", f"sqlite+aiosqlite:///{root / 'service.db'}")]
    if postgres:
        targets.append(("PostgreSQL", _fresh_postgres(postgres)))
    for label, url in targets:
        base, server = _serve(url, root)
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
                password = "correct horse battery staple"  # noqa: S105 - a throwaway benchmark account
                http.post("/api/auth/register", json={"email": email, "password": password}).raise_for_status()
                token = http.post("/api/auth/login", json={"email": email, "password": password}).json()["access_token"]
                transport = HttpSyncTransport(http, token)
                t0 = datetime.now(UTC)
                # acks and settings: the service's own work (the paper account is exercised by the tests)
                actions = [a for a in _backlog(n * 3, "bench-http", t0) if a.kind in ("settings", "ack")][:n]
                actions = [msgspec.structs.replace(a, seq=i + 1) for i, a in enumerate(actions)]
                started = time.perf_counter()
                applied = 0
                for start in range(0, n, batch):
                    request = PushRequest(device_id="bench-http", sent_at_device=t0,
                                          actions=[PushedAction(action=a, age_ms=0) for a in actions[start : start + batch]])  # fmt: skip
                    applied += sum(r.code == "applied" for r in transport.push(request).results)
                pushed = time.perf_counter() - started
                assert applied == n, f"{applied} of {n} applied"
            rows = [(str(uuid.uuid4()), msgspec.json.encode(a)) for a in actions]
            plain = asyncio.run(_plain_inserts(url, rows, batch))
            print(
                f"{label:<12} {pushed:>8.2f} {n / pushed:>10.0f} {plain:>8.2f} {n / plain:>9.0f} {pushed / plain:>6.1f}x"
            )
        finally:
            server.should_exit = True  # type: ignore[attr-defined]
            time.sleep(0.5)
            if label == "PostgreSQL":
                _drop_postgres(postgres or "", url)


def _fresh_postgres(admin_url: str) -> str:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from service.db.engine import create_engine

    name = f"signalos_bench_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        engine = create_engine(admin_url)
        try:
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(admin_url: str, url: str) -> None:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from service.db.engine import create_engine

    async def run() -> None:
        engine = create_engine(admin_url)
        try:
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        finally:
            await engine.dispose()

    asyncio.run(run())


def main() -> None:
    """Parse arguments and run every benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enqueues", type=int, default=500)
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite files (default: a temp dir)")
    parser.add_argument("--http-actions", type=int, default=5000, help="actions pushed over HTTP (0 skips it)")
    parser.add_argument("--postgres", default=os.environ.get("SIGNALOS_TEST_POSTGRES_URL"),
                        help="admin URL of a PostgreSQL server (a fresh database is created and dropped)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"SQLite {sqlite3.sqlite_version}, files in {root}")
        bench_enqueue(root, args.enqueues)
        bench_apply(root, args.actions, args.batch)
        bench_end_to_end(root, min(args.actions, 2000), args.batch)
        if args.http_actions:
            bench_http(root, args.http_actions, args.batch, args.postgres)


if __name__ == "__main__":
    main()
