"""Behaviour every store shares (run on the in-memory and the SQLite store): append, heads, queries, pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signalos_core.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditFormatError,
    AuditQuery,
    AuditStore,
    MemoryAuditStore,
    iter_query,
    verify_store,
)
from tests.core.audit.conftest import START, make_entry


def fill(store: AuditStore, count: int = 12) -> None:
    for index in range(count):
        store.append(make_entry(index, chain_id=f"acc-{index % 2}"))


def test_is_a_store(store: AuditStore) -> None:
    assert isinstance(store, AuditStore)


def test_append_chains_per_chain_id(store: AuditStore) -> None:
    first = store.append(make_entry(0, chain_id="a"))
    other = store.append(make_entry(1, chain_id="b"))
    second = store.append(make_entry(2, chain_id="a"))
    assert (first.sequence, other.sequence, second.sequence) == (0, 0, 1)
    assert first.prev_hash == other.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    head = store.head("a")
    assert head is not None
    assert (head.sequence, head.hash) == (1, second.hash)
    assert str(head) == f"1:{second.hash}"
    assert store.head("missing") is None
    assert store.chains() == ["a", "b"]
    assert [report.ok for report in verify_store(store)] == [True, True]


def test_recorded_at_comes_from_the_clock(store: AuditStore) -> None:
    records = [store.append(make_entry(i)) for i in range(2)]
    assert [r.recorded_at for r in records] == [START, START + timedelta(seconds=1)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AuditQuery(), list(range(12))),
        (AuditQuery(chain_id="acc-1"), [1, 3, 5, 7, 9, 11]),
        (AuditQuery(account_id="acc-0"), [0, 2, 4, 6, 8, 10]),
        (AuditQuery(outcome="denied"), [1, 4, 7, 10]),
        (AuditQuery(rule_id="ftmo.max_daily_loss"), [1, 4, 7, 10]),
        (AuditQuery(rule_id="ftmo.max_loss", account_id="acc-1"), [3, 5, 9, 11]),
        (AuditQuery(kind="enforcement"), []),
        (AuditQuery(since=START + timedelta(seconds=3), until=START + timedelta(seconds=6)), [3, 4, 5]),
        (AuditQuery(since=START.astimezone(UTC) + timedelta(seconds=10)), [10, 11]),
    ],
)
def test_query_filters(store: AuditStore, query: AuditQuery, expected: list[int]) -> None:
    fill(store)
    found = [record.recorded_at for record in iter_query(store, query)]
    assert found == [START + timedelta(seconds=i) for i in expected]


def test_keyset_pagination_forward_and_backward(store: AuditStore) -> None:
    fill(store)
    pages = []
    query = AuditQuery(limit=5)
    while True:
        page = store.query(query)
        pages.append(len(page.items))
        if page.next_cursor is None:
            break
        query = AuditQuery(limit=5, after=page.next_cursor)
    assert pages == [5, 5, 2]
    newest = store.query(AuditQuery(limit=3, newest_first=True))
    assert [r.recorded_at for r in newest.items] == [START + timedelta(seconds=s) for s in (11, 10, 9)]
    assert newest.next_cursor is not None
    older = store.query(AuditQuery(limit=3, newest_first=True, after=newest.next_cursor))
    assert [r.recorded_at for r in older.items] == [START + timedelta(seconds=s) for s in (8, 7, 6)]


def test_cursor_is_stable_while_records_are_appended(store: AuditStore) -> None:
    fill(store, 4)
    page = store.query(AuditQuery(limit=2))
    store.append(make_entry(99, chain_id="acc-0"))
    rest = store.query(AuditQuery(limit=10, after=page.next_cursor))
    assert len(rest.items) == 3  # records 2, 3 and the new one; nothing skipped or repeated


def test_exact_page_boundary_has_no_next_cursor(store: AuditStore) -> None:
    fill(store, 4)
    assert store.query(AuditQuery(limit=4)).next_cursor is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"since": datetime(2026, 1, 1)}, "since"),  # noqa: DTZ001 - naive on purpose
        ({"after": "abc"}, "after"),
        ({"after": "9" * 30}, "after"),
    ],
)
def test_bad_queries_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(AuditFormatError) as excinfo:
        AuditQuery(**fields)  # type: ignore[arg-type]
    assert excinfo.value.field == field


def test_keyed_store_verifies_only_with_its_key() -> None:
    key = b"0123456789abcdef0123"
    store = MemoryAuditStore(key=key)
    store.append(AuditEntry(kind="decision", chain_id="c"))
    assert verify_store(store, "c", key=key)[0].ok
    with pytest.raises(AuditFormatError):
        verify_store(store, "c")


def test_iter_query_follows_every_page(store: AuditStore) -> None:
    fill(store, 7)
    assert len(list(iter_query(store, AuditQuery(limit=2)))) == 7
