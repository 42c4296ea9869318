"""SIGKILL the client at random points between enqueue and sync: no acknowledged action is lost."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from signalos_core.offline import (
    LocalTransport,
    Outbox,
    PaperBroker,
    SimpleLimits,
    SQLiteServerStore,
    SyncEngine,
    SyncServer,
)

CHILD = Path(__file__).with_name("_child_outbox.py")
ROOT = Path(__file__).resolve().parents[3]


def _run_and_kill(outbox: Path, server_db: Path, seed: int, run_for: float) -> list[uuid.UUID]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(CHILD), str(outbox), str(server_db), str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    acked: list[uuid.UUID] = []
    buffer = b""
    # The kill schedule starts at the child's first acknowledged action (start-up time varies with load).
    deadline = time.monotonic() + 60
    started = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.05)
        if ready:
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            if not started:
                started = True
                deadline = time.monotonic() + run_for
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    rest = child.stdout.read()
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode() if child.stderr else ""
    buffer += rest
    for line in buffer.split(b"\n"):
        if len(line) == 36:  # a complete line only; a torn last line was never fully acknowledged
            acked.append(uuid.UUID(line.decode()))
    if child.stderr is not None:
        child.stderr.close()
    child.stdout.close()
    return acked


def test_sigkill_between_enqueue_and_sync_loses_no_acknowledged_action(tmp_path: Path) -> None:
    outbox_path, server_db = tmp_path / "device.db", tmp_path / "server.db"
    rng = random.Random(1234)  # noqa: S311 - reproducible kill schedule
    acked: list[uuid.UUID] = []
    for seed in range(4):
        acked += _run_and_kill(outbox_path, server_db, seed, run_for=rng.uniform(0.3, 0.9))
        with Outbox(outbox_path) as outbox:  # opening runs PRAGMA quick_check
            missing = [a for a in acked if outbox.get(a) is None]
            assert missing == [], f"{len(missing)} acknowledged actions lost after SIGKILL"
    assert len(acked) > 20, "the child recorded too little to mean anything"
    # After the crashes, one sync delivers everything exactly once.
    store = SQLiteServerStore(server_db)
    server = SyncServer(store, PaperBroker(), SimpleLimits())
    with Outbox(outbox_path) as outbox:
        summary = SyncEngine(outbox, LocalTransport(server, "alice")).sync(max_rounds=5, sleep=lambda _s: None)
        assert summary.in_sync
        for action_id in acked:
            record = outbox.get(action_id)
            assert record is not None
            assert record.outcome is not None
            assert record.outcome.effective.code == "applied"
            server_record = store.outcome("alice", action_id)
            assert server_record is not None
            assert server_record[0].code == "applied"
        assert outbox.report() == []
    store.close()
