"""``signalos audit``: verify and export the tamper-evident audit trail (library only, no service imports).

Exit codes: 0 the chain(s) verify (or the export succeeded), 2 bad input (missing file, not an audit database
or JSON-lines export, bad option, keyed chain without its key), 4 the audit trail was tampered with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NoReturn

import click
import msgspec
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from signalos_core.audit import (
    AuditError,
    AuditQuery,
    AuditRecord,
    ChainHead,
    SQLiteAuditStore,
    UnreadableRecord,
    VerifyReport,
    is_sqlite_file,
    iter_query,
    matches,
    read_jsonl,
    verify,
    verify_chains,
    write_csv,
    write_jsonl,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_TAMPERED", "audit"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_TAMPERED = 4


def _fail(message: str, **context: Any) -> NoReturn:
    click.echo(json.dumps({"error": "bad_input", "message": message, **context}), err=True)
    sys.exit(EXIT_BAD_INPUT)


def _progress() -> Progress:
    # Progress goes to stderr and only on a terminal, so stdout stays clean JSON for scripts.
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description} {task.completed} records"),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _counted(items: Iterator[Any], progress: Progress, description: str) -> Iterator[Any]:
    task = progress.add_task(description, total=None)
    for item in items:
        progress.advance(task)
        yield item


def _read_key(key_file: Path | None) -> bytes | None:
    if key_file is None:
        return None
    try:
        key = key_file.read_bytes().strip()
    except OSError as exc:
        _fail(f"cannot read key file: {exc}", field="--key-file")
    if len(key) < 16:
        _fail("the HMAC key must be at least 16 bytes", field="--key-file")
    return key


def _parse_heads(values: tuple[str, ...], chain: str | None) -> dict[str, ChainHead]:
    heads: dict[str, ChainHead] = {}
    for value in values:
        name, sep, rest = value.rpartition("=")
        chain_id = name if sep else chain
        sequence, _, digest = rest.partition(":")
        if chain_id is None or not sequence.isdigit() or len(digest) != 64:
            _fail(f"--expect-head {value!r}: use CHAIN=SEQUENCE:HASH (or SEQUENCE:HASH with --chain)")
        heads[chain_id] = ChainHead(chain_id=chain_id, sequence=int(sequence), hash=digest.lower())
    return heads


def _open_store(file: Path) -> SQLiteAuditStore:
    try:
        return SQLiteAuditStore(file, readonly=True)
    except AuditError as exc:
        _fail(str(exc), file=str(file))


def _verify_sqlite(file: Path, chain: str | None, key: bytes | None, heads: dict[str, ChainHead]) -> list[VerifyReport]:
    with _open_store(file) as store, _progress() as progress:
        chains = [chain] if chain is not None else store.chains()
        reports = []
        for chain_id in chains:
            anchor = heads.get(chain_id, store.head(chain_id))
            records = _counted(store.scan(chain_id), progress, f"verifying {chain_id}")
            reports.append(verify(records, key=key, anchor=anchor, chain_id=chain_id))
        return reports


def _verify_jsonl(file: Path, chain: str | None, key: bytes | None, heads: dict[str, ChainHead]) -> list[VerifyReport]:
    with file.open(encoding="utf-8") as stream, _progress() as progress:
        records = _counted(read_jsonl(stream), progress, "verifying")
        reports = verify_chains(records, key=key, anchors=heads)
    if chain is not None:
        reports = [report for report in reports if report.chain_id == chain]
        if not reports:
            reports = [verify([], anchor=heads.get(chain), chain_id=chain)]
    return reports


def _verify_service_database(database_url: str, chain: str | None, key: bytes | None) -> NoReturn:
    import asyncio

    from service.compliance.audit import verify_database  # the service's tables; imported only for this option

    try:
        reports = asyncio.run(verify_database(database_url, chain_id=chain, key=key))
    except Exception as exc:
        _fail(f"cannot read the audit tables at the given database: {type(exc).__name__}: {exc}")
    ok = all(report.ok for report in reports)
    body = {"database": "service", "format": "database", "ok": ok, "chains": msgspec.to_builtins(reports)}
    click.echo(json.dumps(body, indent=2))
    sys.exit(EXIT_OK if ok else EXIT_TAMPERED)


def _kind_of(file: Path) -> str:
    if not file.is_file():
        _fail(f"{file}: no such file", file=str(file))
    return "sqlite" if is_sqlite_file(file) else "jsonl"


@click.group()
def audit() -> None:
    """Verify and export the hash-chained audit trail of compliance decisions."""


@audit.command("verify")
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--database-url",
    default=None,
    help="Verify the service database instead of FILE (SQLAlchemy URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...).",
)
@click.option("--chain", default=None, help="Verify only this chain id (default: every chain).")
@click.option("--key-file", type=click.Path(path_type=Path), default=None, help="HMAC key of a keyed chain.")
@click.option(
    "--expect-head",
    "expect_head",
    multiple=True,
    help="Anchor kept outside the database: CHAIN=SEQUENCE:HASH (repeatable; SEQUENCE:HASH with --chain).",
)
def verify_command(
    file: Path | None, database_url: str | None, chain: str | None, key_file: Path | None, expect_head: tuple[str, ...]
) -> None:
    """Verify the audit chain(s) in FILE (an audit SQLite database or a JSON-lines export), or in the service
    database given by --database-url (SQLite or PostgreSQL).

    Prints a JSON report naming every edited, deleted, inserted, reordered or malformed record with its
    position and sequence. Exit 0 intact, 4 tampered, 2 bad input.
    """
    key = _read_key(key_file)
    if database_url is not None:
        _verify_service_database(database_url, chain, key)
    if file is None:
        _fail("give an audit FILE or --database-url")
    heads = _parse_heads(expect_head, chain)
    kind = _kind_of(file)
    try:
        if kind == "sqlite":
            reports = _verify_sqlite(file, chain, key, heads)
        else:
            reports = _verify_jsonl(file, chain, key, heads)
    except (AuditError, UnicodeDecodeError) as exc:
        _fail(str(exc), file=str(file))
    ok = all(report.ok for report in reports)
    body = {"file": str(file), "format": kind, "ok": ok, "chains": msgspec.to_builtins(reports)}
    click.echo(json.dumps(body, indent=2))
    sys.exit(EXIT_OK if ok else EXIT_TAMPERED)


def _jsonl_records(stream: IO[str], query: AuditQuery) -> Iterator[AuditRecord]:
    for record in read_jsonl(stream):
        if isinstance(record, UnreadableRecord):
            _fail(f"{record.location}: unreadable record: {record.error}")
        if matches(record, query):
            yield record


@audit.command("export")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write here (default stdout).")
@click.option("--chain", default=None, help="Only this chain id.")
@click.option("--account", default=None, help="Only this account id.")
@click.option("--kind", default=None, help="Only this record kind (decision, enforcement, ...).")
@click.option("--rule", "rule_id", default=None, help="Only records where this rule id fired.")
@click.option("--outcome", default=None, help="Only this outcome (allowed, denied, breach, ...).")
@click.option("--since", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]), default=None, help="From (inclusive), ISO.")
@click.option("--until", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]), default=None, help="Until (exclusive), ISO.")
def export_command(
    *,
    file: Path,
    fmt: str,
    output: Path | None,
    chain: str | None,
    account: str | None,
    kind: str | None,
    rule_id: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Export the records of FILE (audit SQLite database or JSON-lines export) as JSON lines or CSV.

    Records come out in append order; filters combine with AND. A summary line (JSON) goes to stderr.
    Times need an offset, e.g. 2026-05-12T00:00:00+00:00. Exit 0 done, 2 bad input.
    """
    source = _kind_of(file)
    # click.DateTime with %z only yields aware datetimes, so this query is always valid.
    query = AuditQuery(
        chain_id=chain, account_id=account, kind=kind, rule_id=rule_id, outcome=outcome, since=since, until=until
    )
    writer = write_jsonl if fmt == "jsonl" else write_csv
    with ExitStack() as stack:
        out: IO[str] = sys.stdout
        if output is not None:
            out = stack.enter_context(output.open("w", encoding="utf-8", newline=""))
        progress = stack.enter_context(_progress())
        try:
            if source == "sqlite":
                store = stack.enter_context(_open_store(file))
                records = iter_query(store, msgspec.structs.replace(query, limit=1000))
            else:
                records = _jsonl_records(stack.enter_context(file.open(encoding="utf-8")), query)
            count = writer(_counted(records, progress, "exporting"), out)
        except (AuditError, UnicodeDecodeError) as exc:
            _fail(str(exc), file=str(file))
    summary = {"exported": count, "format": fmt, "output": str(output) if output else "-"}
    click.echo(json.dumps(summary), err=True)
