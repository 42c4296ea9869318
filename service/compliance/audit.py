"""The hash-chained audit log in the service database, built on :mod:`signalos_core.audit`.

Records are sealed by the library (:func:`~signalos_core.audit.seal`) and stored cell by cell as canonical text
(:func:`~signalos_core.audit.record_to_columns`), in tables laid out exactly like the library's SQLite store (``audit_records``, ``audit_heads``,
``audit_meta``): a row read back re-encodes to the bytes that were hashed, so any SQL ``UPDATE`` shows up as an
edited record and any ``DELETE`` as a gap or a head mismatch, located by :func:`~signalos_core.audit.verify`.
``signalos audit verify var/signalos.db`` reads a SQLite service database directly.

Every account has its own chain (``account:<uuid>``), so appends for one account are serialised by the same
per-account lock as its state (see services.py) and accounts never contend with each other; firm-level events
(profile publications) go to ``firm:<uuid>``. The head row is moved with a compare-and-set on its sequence and
the ``(chain_id, sequence)`` key is unique, so two writers can never fork a chain: the loser gets
:class:`ChainConflict` and its whole transaction is retried.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.compliance.models import audit_heads, audit_meta, audit_records
from signalos_core.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditPage,
    AuditQuery,
    AuditRecord,
    ChainHead,
    UnreadableRecord,
    VerifyReport,
    canonical_json,
    canonical_tree,
    matches,
    record_from_columns,
    record_to_columns,
    seal,
    verify,
)

__all__ = [
    "AUDIT_SCHEMA_VERSION",
    "ChainConflict",
    "DatabaseAuditLog",
    "account_chain",
    "firm_chain",
    "verify_database",
]

AUDIT_SCHEMA_VERSION = "1"
_SCAN_BATCH = 500


class LRU(OrderedDict[str, ChainHead]):
    """A small least-recently-used mapping of chain heads."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: str, value: ChainHead) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class ChainConflict(Exception):  # noqa: N818 - a control-flow signal for the retry loop, not an error to show
    """Another writer moved the chain head first; the caller retries its whole transaction."""


def account_chain(account_id: object) -> str:
    """The chain id of one trading account."""
    return f"account:{account_id}"


def firm_chain(firm_id: object) -> str:
    """The chain id of a firm's profile publications."""
    return f"firm:{firm_id}"


def _from_row(row: Any) -> AuditRecord | UnreadableRecord:
    return record_from_columns(row._mapping, location=f"row id {row._mapping['id']}")


def _utc_text(value: datetime) -> str:
    text = canonical_tree(value, "time")
    assert isinstance(text, str)  # noqa: S101 - canonical_tree turns an aware datetime into its UTC text
    return text


# The append path's statements are built once: parameters travel separately, so no bound-parameter objects or
# cache keys are made per append (SQLAlchemy's statement construction was the largest cost of a check).
_INSERT_RECORD = insert(audit_records)
_INSERT_HEAD = insert(audit_heads)
_MOVE_HEAD = (
    update(audit_heads)
    .where(and_(audit_heads.c.chain_id == bindparam("b_chain"), audit_heads.c.sequence == bindparam("b_from")))
    .values(sequence=bindparam("b_to"), hash=bindparam("b_hash"))
)


class DatabaseAuditLog:
    """Append, read, query and verify audit chains through an ``AsyncSession`` (the caller's transaction).

    ``key`` makes new records HMAC-keyed (then verification needs the same key).
    """

    def __init__(self, *, key: bytes | None = None, head_cache: int = 10_000) -> None:
        self.key = key
        # Last appended head per chain. A cached head is only a guess: the head row moves with a compare-and-
        # set on its sequence, so a stale guess (rolled back, or another replica appended) fails and is
        # re-read. It saves a query per append on the hot path.
        self._heads: LRU = LRU(head_cache)

    async def ensure_schema_marker(self, db: AsyncSession) -> None:
        """Insert the ``audit_meta`` schema row if it is missing (the CLI recognises the tables by it)."""
        present = await db.scalar(select(audit_meta.c.value).where(audit_meta.c.key == "schema_version"))
        if present is None:
            await db.execute(insert(audit_meta).values(key="schema_version", value=AUDIT_SCHEMA_VERSION))

    async def append(self, db: AsyncSession, entry: AuditEntry, *, now: datetime) -> AuditRecord:
        """Seal ``entry`` after its chain's head and write record and head (commit is the caller's)."""
        head = self._heads.get(entry.chain_id)
        if head is None:
            head = await self.head(db, entry.chain_id, for_update=True)
        sequence, prev_hash = (head.sequence + 1, head.hash) if head else (0, GENESIS_HASH)
        record = seal(entry, sequence=sequence, prev_hash=prev_hash, recorded_at=now, key=self.key)
        try:
            await db.execute(_INSERT_RECORD, record_to_columns(record))
            if head is None:
                await db.execute(_INSERT_HEAD, {"chain_id": record.chain_id, "sequence": sequence, "hash": record.hash})
            else:
                moved = await db.execute(
                    _MOVE_HEAD,
                    {"b_chain": record.chain_id, "b_from": head.sequence, "b_to": sequence, "b_hash": record.hash},
                )
                if moved.rowcount != 1:  # type: ignore[attr-defined]
                    raise ChainConflict(record.chain_id)
        except (IntegrityError, ChainConflict) as exc:
            # The cached head was stale (another replica appended) or the transaction lost a race: forget the
            # head; the caller rolls back and retries the whole transaction, reading the head afresh.
            self._heads.pop(record.chain_id, None)
            raise ChainConflict(record.chain_id) from exc
        self._heads[record.chain_id] = ChainHead(chain_id=record.chain_id, sequence=sequence, hash=record.hash)
        return record

    async def head(self, db: AsyncSession, chain_id: str, *, for_update: bool = False) -> ChainHead | None:
        """The recorded head of ``chain_id`` (row-locked on PostgreSQL when ``for_update``)."""
        statement = select(audit_heads.c.sequence, audit_heads.c.hash).where(audit_heads.c.chain_id == chain_id)
        if for_update and db.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update()
        row = (await db.execute(statement)).first()
        if row is None:
            return None
        return ChainHead(chain_id=chain_id, sequence=int(row.sequence), hash=str(row.hash))

    async def chains(self, db: AsyncSession, *, prefix: str | None = None) -> list[str]:
        """Every chain id with records or a head (optionally only those starting with ``prefix``), sorted."""
        found: set[str] = set()
        for table in (audit_records, audit_heads):
            statement = select(table.c.chain_id).distinct()
            if prefix is not None:
                statement = statement.where(table.c.chain_id.startswith(prefix, autoescape=True))
            found.update(await db.scalars(statement))
        return sorted(found)

    async def scan(self, db: AsyncSession, chain_id: str) -> AsyncIterator[AuditRecord | UnreadableRecord]:
        """Rows of ``chain_id`` in append (row id) order, in batches."""
        last_id = 0
        while True:
            rows = (
                await db.execute(
                    select(audit_records)
                    .where(and_(audit_records.c.chain_id == chain_id, audit_records.c.id > last_id))
                    .order_by(audit_records.c.id)
                    .limit(_SCAN_BATCH)
                )
            ).all()
            if not rows:
                return
            for row in rows:
                yield _from_row(row)
            last_id = rows[-1].id

    async def verify_chain(self, db: AsyncSession, chain_id: str) -> VerifyReport:
        """Verify one chain against its recorded head."""
        records = [record async for record in self.scan(db, chain_id)]
        anchor = await self.head(db, chain_id)
        return verify(records, key=self.key, anchor=anchor, chain_id=chain_id)

    async def query(self, db: AsyncSession, query: AuditQuery, *, chain_ids: list[str] | None = None) -> AuditPage:
        """One page of records matching ``query`` (restricted to ``chain_ids`` when given), keyset-paginated.

        The rule filter is narrowed in SQL with a substring of the canonical JSON and then checked exactly with
        :func:`~signalos_core.audit.matches`, so a page may hold fewer than ``limit`` items; follow
        ``next_cursor`` until it is None.
        """
        table = audit_records
        clauses: list[Any] = []
        for column in ("chain_id", "account_id", "kind", "outcome"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(table.c[column] == value)
        if chain_ids is not None:
            clauses.append(table.c.chain_id.in_(chain_ids))
        if query.rule_id is not None:
            needle = canonical_json({"rule_id": query.rule_id}).decode("utf-8")[1:-1]
            clauses.append(table.c.rules.contains(needle, autoescape=True))
        if query.since is not None:
            clauses.append(table.c.recorded_at >= _utc_text(query.since))
        if query.until is not None:
            clauses.append(table.c.recorded_at < _utc_text(query.until))
        position = query.cursor_position()
        if position is not None:
            clauses.append(table.c.id < position if query.newest_first else table.c.id > position)
        order = table.c.id.desc() if query.newest_first else table.c.id.asc()
        rows = (await db.execute(select(table).where(*clauses).order_by(order).limit(query.limit + 1))).all()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        items: list[AuditRecord] = []
        for row in rows:
            record = _from_row(row)
            if isinstance(record, UnreadableRecord):
                # A tampered cell must not hide other records; verification reports it with its location.
                continue
            if matches(record, query):
                items.append(record)
        return AuditPage(items=tuple(items), next_cursor=str(rows[-1].id) if more else None)


async def verify_database(
    database_url: str, *, chain_id: str | None = None, key: bytes | None = None
) -> list[VerifyReport]:
    """Verify every chain (or one) of the service database at ``database_url`` (SQLite or PostgreSQL).

    What ``signalos audit verify --database-url URL`` runs: the same :func:`~signalos_core.audit.verify` as the
    verify endpoints, anchored on the recorded heads.
    """
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from service.db.engine import create_engine

    engine = create_engine(database_url)
    log = DatabaseAuditLog(key=key)
    try:
        async with async_sessionmaker(engine)() as db:
            chains = [chain_id] if chain_id is not None else await log.chains(db)
            return [await log.verify_chain(db, chain) for chain in chains]
    finally:
        await engine.dispose()
