"""Onboarding benchmarks: concurrent connection tests and state evaluation for funnels.

Run: ``.venv/bin/python benchmarks/bench_onboarding.py``. Everything is local (loopback bridge servers).

1. Connection tests: N bridge tests against a server that answers after 50 ms, run one after another
   (baseline) and concurrently through ``ConnectionTesters`` (bounded to 16 at once); plus N tests against a
   stalling server with a 0.5 s timeout, concurrently. The ratio shows the tests do not serialise.
2. State evaluation: ``OnboardingEngine.view`` for U users with a half-finished onboarding (what a funnel
   does per user), against a baseline that only decodes the same records from JSON.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from signalos_core.onboarding import (
    ConnectionTesters,
    Facts,
    OnboardingEngine,
    StepRecord,
    TargetPolicy,
    default_workflow,
)

N_TESTS = 64
USERS = 2000


async def _bridge(delay: float, stall: bool) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        if stall:
            await reader.read()  # never answer; returns when the tester gives up and closes
            writer.close()
            return
        await asyncio.sleep(delay)
        hello = json.loads(line)
        reply = {
            "ok": True,
            "protocol": "signalos-bridge/1",
            "platform": hello["platform"],
            "server": hello["server"],
            "account_type": "demo",
        }
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def _answers(port: int, timeout_s: float = 5) -> dict[str, Any]:
    return {
        "kind": "mt_bridge",
        "host": "127.0.0.1",
        "port": port,
        "platform": "mt5",
        "login": "1234567",
        "password": "pw",
        "server": "Demo",
        "timeout_s": timeout_s,
    }


async def bench_connections() -> None:
    testers = ConnectionTesters(policy=TargetPolicy(allow_private=True))
    server, port = await _bridge(0.05, stall=False)
    stall_server, stall_port = await _bridge(0, stall=True)
    started = time.perf_counter()
    sequential = [await testers.test(_answers(port)) for _ in range(N_TESTS)]
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    concurrent = await asyncio.gather(*(testers.test(_answers(port)) for _ in range(N_TESTS)))
    parallel = time.perf_counter() - started
    started = time.perf_counter()
    stalled = await asyncio.gather(*(testers.test(_answers(stall_port, 0.5)) for _ in range(N_TESTS)))
    stalling = time.perf_counter() - started
    assert all(r.ok for r in (*sequential, *concurrent))
    assert all(r.status == "timeout" for r in stalled)
    latencies = [r.latency_ms for r in concurrent if r.latency_ms is not None]
    print(f"connection tests, {N_TESTS} x bridge answering in 50 ms")
    print(f"  sequential (baseline): {baseline:.2f} s")
    print(f"  concurrent (16 at once): {parallel:.2f} s   ratio {baseline / parallel:.1f}x faster")
    print(f"  latency measured: median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms")
    print(
        f"  {N_TESTS} x stalling server, timeout 0.5 s, concurrent: {stalling:.2f} s "
        f"(bound: {N_TESTS / 16 * 0.5:.1f} s)"
    )
    for item in (server, stall_server):
        item.close()


def bench_view() -> None:
    engine = OnboardingEngine(default_workflow())
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    answers = {"display_name": "A", "timezone": "UTC"}
    records = {
        step: StepRecord(
            status="completed",
            answers=answers,
            completed_at=t0 + timedelta(minutes=i),
            updated_at=t0 + timedelta(minutes=i),
        )
        for i, step in enumerate(("profile", "verify_email", "signal_source", "broker"))
    }
    encoded = msgspec.json.encode(records)
    decoder = msgspec.json.Decoder(dict[str, StepRecord])
    started = time.perf_counter()
    for _ in range(USERS):
        decoder.decode(encoded)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(USERS):
        view = engine.view(decoder.decode(encoded), Facts(), started_at=t0)
    evaluated = time.perf_counter() - started
    assert view.current_step == "compliance"
    print(f"state evaluation, {USERS} users (a funnel's work per cohort)")
    print(f"  decode records only (baseline): {baseline * 1000:.1f} ms")
    print(
        f"  decode + view: {evaluated * 1000:.1f} ms  ({evaluated / USERS * 1e6:.0f} us/user, "
        f"ratio {evaluated / baseline:.1f}x the decode)"
    )


if __name__ == "__main__":
    asyncio.run(bench_connections())
    bench_view()
