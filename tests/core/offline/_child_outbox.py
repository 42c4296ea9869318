"""Child process for the SIGKILL test: records actions forever, syncing now and then, printing each acked id.

An id is printed only after ``enqueue`` returned, so every printed id is an acknowledged action.
Usage: python _child_outbox.py OUTBOX SERVER_DB SEED
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from signalos_core.offline import (
    LocalTransport,
    OfflineClient,
    Outbox,
    PaperBroker,
    SimpleLimits,
    SQLiteServerStore,
    SyncEngine,
    SyncServer,
)


def main() -> None:
    outbox_path, server_path, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)  # noqa: S311 - test schedule, not cryptography
    client = OfflineClient(Outbox(outbox_path, device_id="killed-device"))
    server = SyncServer(SQLiteServerStore(server_path), PaperBroker(), SimpleLimits())
    engine = SyncEngine(client.outbox, LocalTransport(server, "alice"))
    n = 0
    while True:
        n += 1
        if rng.random() < 0.5:
            action = client.set_settings({f"field_{n % 7}": n})  # FULL
        else:
            action = client.acknowledge(f"subject-{seed}-{n}")  # NORMAL: survives process crashes too
        sys.stdout.write(f"{action.action_id}\n")
        sys.stdout.flush()
        if rng.random() < 0.1:
            engine.sync_once()


if __name__ == "__main__":
    main()
