"""``signalos offline``: inspect and sync a device's outbox file from the command line (JSON output).

``status``, ``report`` and ``ack`` import only ``signalos_core``; ``sync`` imports the HTTP transport lazily.
Exit codes (also in docs/offline.md): 0 ok; 2 bad input (usage, no such outbox file, malformed id); 3 the sync
round did not finish (server unreachable or refusing, actions still retrying: run it again later); 4 the device
id is used by another installation (``device_fork``: re-register the device); 5 the outbox file is corrupt,
locked or not an outbox; 6 ``ack``: no unacknowledged report entry with that id.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from signalos_core.offline import Outbox, ReportEntry

__all__ = ["offline"]

EXIT_INVALID = 2
EXIT_NOT_IN_SYNC = 3
EXIT_DEVICE_FORK = 4
EXIT_OUTBOX = 5
EXIT_NOT_FOUND = 6

_OUTBOX = click.option(
    "--outbox",
    "path",
    required=True,
    envvar="SIGNALOS_OUTBOX",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The device's outbox file (env SIGNALOS_OUTBOX). Never created by these commands.",
)


def _emit(payload: object) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


@contextmanager
def _opened(path: Path) -> Iterator[Outbox]:
    """Open an existing outbox; a missing file is bad input (exit 2), an unusable one exit 5."""
    from signalos_core.offline import Outbox, OutboxError

    if not path.is_file():
        _emit({"ok": False, "error": f"no outbox file at {path}"})
        sys.exit(EXIT_INVALID)
    try:
        outbox = Outbox(path)
    except OutboxError as exc:
        _emit({"ok": False, "error": str(exc)})
        sys.exit(EXIT_OUTBOX)
    try:
        yield outbox
    finally:
        outbox.close()


def _entry(entry: ReportEntry) -> dict[str, Any]:
    return {
        "action_id": str(entry.action.action_id),
        "seq": entry.action.seq,
        "kind": entry.action.kind,
        "code": entry.code,
        "message": entry.message,
        "facts": entry.facts,
        "reported_at": entry.reported_at.isoformat(),
        "acknowledged": entry.acknowledged,
    }


def _status(outbox: Outbox) -> dict[str, Any]:
    counts = outbox.counts()
    retrying = [r for r in outbox.unfinished(limit=1000) if r.attempts]
    return {
        "device_id": outbox.device_id,
        "pending": counts["pending"] + counts["sending"],
        "finished": counts["terminal"],
        "retrying": len(retrying),
        "last_errors": sorted({r.last_error for r in retrying if r.last_error}),
        "unacknowledged_report": len(outbox.report()),
        "cursor": outbox.cursor,
    }


@click.group()
def offline() -> None:
    """A device's offline queue: status, sync, the sync report and acknowledgements (see docs/offline.md)."""


@offline.command("status")
@_OUTBOX
def status(path: Path) -> None:
    """Print the queue's state as JSON: pending and retrying actions, unacknowledged report entries, cursor."""
    with _opened(path) as outbox:
        _emit({"ok": True, **_status(outbox)})


@offline.command("report")
@_OUTBOX
@click.option("--all", "include_all", is_flag=True, help="Include entries already acknowledged.")
def report(path: Path, include_all: bool) -> None:
    """Print every action that was not applied, with its outcome code, message and the server's facts."""
    with _opened(path) as outbox:
        entries = outbox.report(include_acknowledged=include_all)
        _emit({"ok": True, "entries": [_entry(e) for e in entries]})


@offline.command("ack")
@_OUTBOX
@click.argument("action_id")
def ack(path: Path, action_id: str) -> None:
    """Acknowledge the report entry of ACTION_ID (a UUID), or every entry with ``all``."""
    try:
        ids = None if action_id == "all" else [uuid.UUID(action_id)]
    except ValueError:
        _emit({"ok": False, "error": f"not an action id: {action_id!r} (a UUID, or 'all')"})
        sys.exit(EXIT_INVALID)
    with _opened(path) as outbox:
        changed = outbox.acknowledge_report(ids)
    if ids is not None and not changed:
        _emit({"ok": False, "error": f"no unacknowledged report entry for {action_id}"})
        sys.exit(EXIT_NOT_FOUND)
    _emit({"ok": True, "acknowledged": changed})


@offline.command("sync")
@_OUTBOX
@click.option("--url", required=True, help="Base URL of the SignalOS service, e.g. https://signalos.example.com")
@click.option("--token", required=True, envvar="SIGNALOS_TOKEN", help="Access token (env SIGNALOS_TOKEN).")
@click.option("--account-id", default=None, help="Trading account whose current compliance mode checks orders.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 100), help="Most sync rounds.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 600), help="HTTP timeout (s).")
def sync(*, path: Path, url: str, token: str, account_id: str | None, rounds: int, timeout: float) -> None:
    """Push the queue and pull outcomes until in sync (at most --rounds rounds); prints the summary as JSON."""
    import httpx
    import msgspec

    from service.sync.transport import HttpSyncTransport
    from signalos_core.offline import OutboxError, SyncEngine

    if not url.startswith(("http://", "https://")):
        _emit({"ok": False, "error": f"--url must be an http(s) URL, got {url!r}"})
        sys.exit(EXIT_INVALID)
    with _opened(path) as outbox, httpx.Client(base_url=url, timeout=timeout) as http:
        engine = SyncEngine(outbox, HttpSyncTransport(http, token, account_id=account_id))
        try:
            summary = engine.sync(max_rounds=rounds)
        except OutboxError as exc:
            _emit({"ok": False, "error": str(exc)})
            sys.exit(EXIT_OUTBOX)
        summary_json = msgspec.to_builtins(summary) | {"in_sync": summary.in_sync}
        _emit({"ok": summary.in_sync, "summary": summary_json, "queue": _status(outbox)})
    if summary.device_forked:
        sys.exit(EXIT_DEVICE_FORK)
    if not summary.in_sync:
        sys.exit(EXIT_NOT_IN_SYNC)
