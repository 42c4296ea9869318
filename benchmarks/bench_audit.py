"""Audit-trail benchmark: append latency/throughput and verification speed, each against a baseline.

Run: ``.venv/bin/python benchmarks/bench_audit.py [--appends N] [--verify N]``

* SQLite append (WAL, synchronous=FULL, BEGIN IMMEDIATE, head read, canonical JSON, SHA-256) against the
  baseline of inserting the same pre-encoded row with the same pragmas in its own transaction: the ratio is the
  price of the chain on top of a durable insert.
* In-memory append against the baseline of ``json.dumps(sort_keys=True)`` + SHA-256 of the same entry.
* Verification of an N-record chain against the baseline of hashing the N JSON lines of its export.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signalos_core.audit import (
    AuditEntry,
    AuditRecord,
    MemoryAuditStore,
    SQLiteAuditStore,
    verify,
    write_jsonl,
)


def raw_fields(index: int) -> dict[str, Any]:
    """What the engine hands over for one pre-trade decision (a 5-rule profile)."""
    equity = Decimal("95000.00") - index % 100
    return {
        "kind": "decision",
        "chain_id": "acc-1",
        "account_id": "acc-1",
        "profile_id": "ftmo-2step",
        "profile_version": "2026.1",
        "profile_hash": "ab" * 32,
        "backend": "python",
        "input": {
            "state": {
                "balance": Decimal("100000.00"),
                "equity": equity,
                "positions": [{"symbol": "EURUSD", "side": "buy", "size": Decimal("1.5"), "entry": Decimal("1.0825")}],
            },
            "order": {"symbol": "GBPUSD", "side": "sell", "size": Decimal("0.5"), "stop_loss": Decimal("1.2710")},
        },
        "outcome": "allowed",
        "rules": [
            {"rule_id": f"ftmo.rule_{n}", "outcome": "pass", "value": equity, "threshold": Decimal("95000")}
            for n in range(5)
        ],
    }


def timed(count: int, action: Callable[[int], object]) -> list[float]:
    samples = []
    for index in range(count):
        start = time.perf_counter()
        action(index)
        samples.append(time.perf_counter() - start)
    return samples


def summary(name: str, samples: list[float], baseline: list[float] | None = None) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = len(samples) / sum(samples)
    line = f"{name:<34} p50 {p50 * 1e6:9.1f} µs   p99 {p99 * 1e6:9.1f} µs   {rate:10.0f}/s"
    if baseline is not None:
        line += f"   ×{p50 / statistics.median(baseline):.2f} of baseline p50"
    print(line)


def bench_sqlite(count: int, workdir: Path) -> None:
    """Alternate one chained append and one baseline insert, so both see the same disk and load."""
    fields = [raw_fields(i) for i in range(count)]
    rows = [json.dumps(f, sort_keys=True, default=str) for f in fields]  # a row of about the same size
    raw = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = FULL")
    raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    chained: list[float] = []
    baseline: list[float] = []
    with SQLiteAuditStore(workdir / "chain.db") as store:
        for index in range(count):
            start = time.perf_counter()
            store.append(AuditEntry(**fields[index]))
            chained.append(time.perf_counter() - start)
            start = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("INSERT INTO t (body) VALUES (?)", (rows[index],))
            raw.execute("COMMIT")
            baseline.append(time.perf_counter() - start)
    raw.close()
    summary("baseline: durable sqlite insert", baseline)
    summary("SQLiteAuditStore.append", chained, baseline)


def bench_memory(count: int) -> list[AuditRecord]:
    fields = [raw_fields(i) for i in range(count)]
    baseline = timed(
        count, lambda i: hashlib.sha256(json.dumps(fields[i], sort_keys=True, default=str).encode()).hexdigest()
    )
    store = MemoryAuditStore()
    chained = timed(count, lambda i: store.append(AuditEntry(**fields[i])))
    summary("baseline: json.dumps + sha256", baseline)
    summary("entry + MemoryAuditStore.append", chained, baseline)
    return [r for r in store.scan("acc-1") if isinstance(r, AuditRecord)]


def bench_verify(records: list[AuditRecord]) -> None:
    buffer = io.StringIO()
    write_jsonl(records, buffer)
    lines = buffer.getvalue().splitlines()
    start = time.perf_counter()
    for line in lines:
        hashlib.sha256(line.encode()).hexdigest()
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    report = verify(records)
    elapsed = time.perf_counter() - start
    assert report.ok
    print(f"{'baseline: sha256 of export lines':<34} {len(lines) / baseline:10.0f} records/s")
    print(f"{'verify()':<34} {len(records) / elapsed:10.0f} records/s   ×{elapsed / baseline:.1f} of baseline time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300, help="durable SQLite appends to time")
    parser.add_argument("--verify", type=int, default=20000, help="records to build and verify in memory")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        bench_sqlite(args.appends, Path(tmp))
    records = bench_memory(args.verify)
    bench_verify(records)


if __name__ == "__main__":
    main()
