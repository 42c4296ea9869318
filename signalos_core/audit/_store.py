"""The storage interface, queries with keyset pagination, and the in-memory store.

A store appends entries atomically (read the chain head, seal the next record, write it and the new head in
one step), lists chains and their heads, scans a chain in append order for verification, and answers queries
by account, kind, rule id, outcome and time range, one page at a time. Pages are ordered by append order; the
cursor is opaque (it is the store's append counter) and stays valid while records are appended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import msgspec

from signalos_core._errors import AuditFormatError
from signalos_core.audit._chain import ChainHead, seal
from signalos_core.audit._record import GENESIS_HASH, AuditEntry, AuditRecord
from signalos_core.audit._verify import UnreadableRecord, VerifyReport, verify

__all__ = [
    "MAX_PAGE_SIZE",
    "AuditPage",
    "AuditQuery",
    "AuditStore",
    "Clock",
    "MemoryAuditStore",
    "iter_query",
    "matches",
    "utc_now",
    "verify_store",
]

#: Largest page a query may ask for (keeps one response bounded).
MAX_PAGE_SIZE = 1000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(UTC)


class AuditQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Filters for :meth:`AuditStore.query`; every given filter must match (AND).

    ``since`` is inclusive and ``until`` exclusive, both timezone-aware. ``after`` is the ``next_cursor`` of the
    previous page. ``newest_first`` pages backwards from the latest record.
    """

    chain_id: str | None = None
    account_id: str | None = None
    kind: str | None = None
    rule_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: str | None = None
    limit: int = 100
    newest_first: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise AuditFormatError(f"limit: must be between 1 and {MAX_PAGE_SIZE}, got {self.limit}", field="limit")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise AuditFormatError(f"{name}: datetime must be timezone-aware", field=name)
        if self.after is not None:
            self.cursor_position()

    def cursor_position(self) -> int | None:
        """The append position encoded in ``after`` (validated)."""
        if self.after is None:
            return None
        if not self.after.isdigit() or len(self.after) > 18:
            raise AuditFormatError(f"after: {self.after!r} is not a cursor returned by this store", field="after")
        return int(self.after)


class AuditPage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One page of query results and the cursor for the next page (None on the last page)."""

    items: tuple[AuditRecord, ...]
    next_cursor: str | None


def matches(record: AuditRecord, query: AuditQuery) -> bool:
    """Whether ``record`` passes the filters of ``query`` (cursor and limit are ignored)."""
    checks = (
        (query.chain_id, record.chain_id),
        (query.account_id, record.account_id),
        (query.kind, record.kind),
        (query.outcome, record.outcome),
    )
    if any(wanted is not None and wanted != actual for wanted, actual in checks):
        return False
    if query.rule_id is not None and query.rule_id not in record.rule_ids:
        return False
    if query.since is not None and record.recorded_at < query.since:
        return False
    return query.until is None or record.recorded_at < query.until


@runtime_checkable
class AuditStore(Protocol):
    """What every audit store provides (the SQLite and in-memory stores here; the service's database later)."""

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Seal ``entry`` as the next record of its chain and store it atomically."""
        ...

    def head(self, chain_id: str) -> ChainHead | None:
        """The last record of ``chain_id`` as the store recorded it, or None for an empty chain."""
        ...

    def chains(self) -> list[str]:
        """Every chain id that has records or a head, sorted."""
        ...

    def scan(self, chain_id: str) -> Iterator[AuditRecord | UnreadableRecord]:
        """Every stored record of ``chain_id`` in append order, undecodable ones as :class:`UnreadableRecord`."""
        ...

    def query(self, query: AuditQuery) -> AuditPage:
        """One page of records matching ``query``, in append order (or reversed with ``newest_first``)."""
        ...


def iter_query(store: AuditStore, query: AuditQuery) -> Iterator[AuditRecord]:
    """Every record matching ``query``, following the cursors page by page."""
    while True:
        page = store.query(query)
        yield from page.items
        if page.next_cursor is None:
            return
        query = msgspec.structs.replace(query, after=page.next_cursor)


def verify_store(store: AuditStore, chain_id: str | None = None, *, key: bytes | None = None) -> list[VerifyReport]:
    """Verify one chain (or every chain) of ``store``, anchored on the heads the store recorded."""
    chains = [chain_id] if chain_id is not None else store.chains()
    reports = []
    for chain in chains:
        reports.append(verify(store.scan(chain), key=key, anchor=store.head(chain), chain_id=chain))
    return reports


class MemoryAuditStore:
    """An audit store in process memory (tests, tools, short-lived engines). Thread-safe; not persistent."""

    def __init__(self, *, key: bytes | None = None, clock: Clock = utc_now) -> None:
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._records: list[AuditRecord] = []
        self._heads: dict[str, ChainHead] = {}

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Seal ``entry`` as the next record of its chain."""
        with self._lock:
            head = self._heads.get(entry.chain_id)
            sequence, prev_hash = (head.sequence + 1, head.hash) if head else (0, GENESIS_HASH)
            record = seal(entry, sequence=sequence, prev_hash=prev_hash, recorded_at=self._clock(), key=self._key)
            self._records.append(record)
            self._heads[entry.chain_id] = ChainHead(chain_id=entry.chain_id, sequence=sequence, hash=record.hash)
            return record

    def head(self, chain_id: str) -> ChainHead | None:
        """The last record of ``chain_id``."""
        with self._lock:
            return self._heads.get(chain_id)

    def chains(self) -> list[str]:
        """Every chain id, sorted."""
        with self._lock:
            return sorted(self._heads)

    def scan(self, chain_id: str) -> Iterator[AuditRecord | UnreadableRecord]:
        """Records of ``chain_id`` in append order (a snapshot taken when called)."""
        with self._lock:
            snapshot = [record for record in self._records if record.chain_id == chain_id]
        return iter(snapshot)

    def query(self, query: AuditQuery) -> AuditPage:
        """One page of matching records; the cursor is the 1-based append position."""
        position = query.cursor_position()
        with self._lock:
            numbered = list(enumerate(self._records, start=1))
        if query.newest_first:
            numbered.reverse()
        if position is not None:
            numbered = [(n, r) for n, r in numbered if (n < position if query.newest_first else n > position)]
        page: list[tuple[int, AuditRecord]] = []
        for number, record in numbered:
            if matches(record, query):
                page.append((number, record))
                if len(page) > query.limit:
                    break
        more = len(page) > query.limit
        page = page[: query.limit]
        cursor = str(page[-1][0]) if more else None
        return AuditPage(items=tuple(record for _, record in page), next_cursor=cursor)
