"""Sync services: the library's :class:`~signalos_core.offline.SyncServer` over the service database.

Each push runs in the request's transaction (committed by the session handler on success, rolled back on any
error): the device is checked to belong to the caller, the user's paper account row is updated first (which
serialises that user's pushes), then every action is decided by the library and its outcome row is written next
to its effect. The library code is synchronous; it runs through ``AsyncSession.run_sync`` on the same
connection and transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.problems import ProblemError, register_problem
from service.sync.models import (
    paper_account,
    paper_quote,
    sync_cancelled_signal,
    sync_device,
)
from service.sync.store import BatchServerStore
from signalos_core.offline import (
    ActionOutcome,
    ComplianceAdvisor,
    DecodedPush,
    DeviceForkError,
    PaperBroker,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    SimpleLimits,
    SyncServer,
)

__all__ = ["SyncService"]

register_problem(
    "device_not_yours",
    403,
    "Device belongs to another user",
    "This device id is registered to another account; a device can only sync for the user it first synced as.",
)
register_problem(
    "device_fork",
    409,
    "Device id used by another installation",
    "This device id already sent a different action at the same sequence number: a second installation (a "
    "restored backup, a cloned app) is using it. Nothing was applied. Re-register the device under a new id; "
    "`device_id` and `seq` name the collision.",
)
register_problem(
    "sync_busy",
    503,
    "Sync busy",
    "A concurrent push for the same action raced this one; retry (the server dedupes by action id).",
)

_outcome_decoder = msgspec.json.Decoder(ActionOutcome)
_value_decoder = msgspec.json.Decoder(bool | int | str | None)


def _prices(session: Session) -> dict[str, Decimal]:
    return {row.symbol: Decimal(row.price) for row in session.execute(select(paper_quote)).all()}


def _lock_paper_account(session: Session, user_id: uuid.UUID) -> PaperBroker:
    """Take the user's write lock (an UPDATE is the first statement), then load prices and the paper account."""
    bumped = session.execute(
        update(paper_account).where(paper_account.c.user_id == user_id).values(version=paper_account.c.version + 1)
    ).rowcount  # type: ignore[attr-defined]
    broker = PaperBroker(_prices(session))
    if bumped:
        state = session.execute(select(paper_account.c.state).where(paper_account.c.user_id == user_id)).scalar_one()
        broker.import_account(str(user_id), state)
    else:
        session.execute(
            insert(paper_account).values(user_id=user_id, version=1, state=broker.export_account(str(user_id)))
        )
    return broker


def _save_paper_account(session: Session, user_id: uuid.UUID, broker: PaperBroker) -> None:
    session.execute(
        update(paper_account)
        .where(paper_account.c.user_id == user_id)
        .values(state=broker.export_account(str(user_id)))
    )


class SyncService:
    """Push, pull and paper quotes for the HTTP layer."""

    def __init__(self, session: AsyncSession, compliance: ComplianceAdvisor | None = None) -> None:
        self._session = session
        self._compliance = compliance or SimpleLimits()

    @staticmethod
    def _claim_device(session: Session, user_id: uuid.UUID, device_id: str) -> None:
        """Register the device to the caller on first use; a device of another user is refused (403)."""
        now = datetime.now(UTC)
        owner = session.execute(select(sync_device.c.user_id).where(sync_device.c.device_id == device_id)).scalar()
        if owner is None:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(sync_device).values(
                            device_id=device_id, user_id=user_id, created_at=now, last_seen_at=now
                        )
                    )
                return
            except IntegrityError:  # another request registered it just now
                owner = session.execute(
                    select(sync_device.c.user_id).where(sync_device.c.device_id == device_id)
                ).scalar_one()
        if owner != user_id:
            raise ProblemError("device_not_yours", detail=f"device {device_id} belongs to another account")

    async def push(self, user_id: uuid.UUID, request: PushRequest | DecodedPush) -> PushResponse:
        """Apply one batch for the caller's device (409 ``device_fork`` if another installation uses its id)."""
        batch = request if isinstance(request, DecodedPush) else DecodedPush.of(request)

        def apply(session: Session) -> PushResponse:
            # The first statement writes: it takes the user's lock before anything is read (no stale snapshot).
            broker = _lock_paper_account(session, user_id)
            self._claim_device(session, user_id, batch.device_id)
            store = BatchServerStore(session, user_id, batch)
            response = SyncServer(store, broker, self._compliance).push(str(user_id), batch)
            seqs = store.flush()
            _save_paper_account(session, user_id, broker)
            results = [
                msgspec.structs.replace(r, server_seq=seqs[r.action_id]) if r.action_id in seqs else r
                for r in response.results
            ]
            return msgspec.structs.replace(response, results=results)

        try:
            return await self._session.run_sync(apply)
        except DeviceForkError as exc:  # raised before anything was written; the request rolls back anyway
            raise ProblemError(
                "device_fork", detail=str(exc), extra={"device_id": exc.device_id, "seq": exc.seq}
            ) from exc
        except IntegrityError as exc:  # a concurrent request recorded the same action id first
            raise ProblemError(
                "sync_busy", detail="retry the push; duplicates are answered with their outcome"
            ) from exc

    async def pull(self, user_id: uuid.UUID, request: PullRequest) -> PullResponse:
        """The device's outcomes after the cursor plus the account state."""

        def read(session: Session) -> PullResponse:
            self._claim_device(session, user_id, request.device_id)
            broker = PaperBroker(_prices(session))
            state = session.execute(select(paper_account.c.state).where(paper_account.c.user_id == user_id)).scalar()
            if state is not None:
                broker.import_account(str(user_id), state)
            return SyncServer(BatchServerStore(session, user_id), broker, self._compliance).pull(str(user_id), request)

        return await self._session.run_sync(read)

    async def cancel_signal(self, user_id: uuid.UUID, signal_id: str) -> tuple[datetime, bool]:
        """Record an upstream cancellation for ``user_id``; returns when, and whether it was already recorded."""

        def cancel(session: Session) -> tuple[datetime, bool]:
            where = (sync_cancelled_signal.c.user_id == user_id, sync_cancelled_signal.c.signal_id == signal_id)
            existing = session.execute(select(sync_cancelled_signal.c.cancelled_at).where(*where)).scalar()
            if existing is not None:
                return (existing if existing.tzinfo else existing.replace(tzinfo=UTC)), True
            now = datetime.now(UTC)
            try:
                with session.begin_nested():
                    session.execute(insert(sync_cancelled_signal).values(user_id=user_id, signal_id=signal_id,
                                                                         cancelled_at=now))  # fmt: skip
            except IntegrityError:  # a concurrent request recorded it first
                return now, True
            return now, False

        return await self._session.run_sync(cancel)

    async def set_quote(self, symbol: str, price: Decimal) -> int:
        """Feed a paper price: store it and trigger SL/TP and limit orders in every paper account holding it."""

        def feed(session: Session) -> int:
            now = datetime.now(UTC)
            text = format(price, "f")
            if not session.execute(update(paper_quote).where(paper_quote.c.symbol == symbol)
                                   .values(price=text, updated_at=now)).rowcount:  # type: ignore[attr-defined]  # fmt: skip
                session.execute(insert(paper_quote).values(symbol=symbol, price=text, updated_at=now))
            changed = 0
            for row in session.execute(select(paper_account.c.user_id, paper_account.c.state)).all():
                broker = PaperBroker(_prices(session))
                broker.import_account(str(row.user_id), row.state)
                touched = broker.set_price(symbol, price)
                if touched:
                    changed += len(touched)
                    _save_paper_account(session, row.user_id, broker)
            return changed

        return await self._session.run_sync(feed)


def outcome_counts(response: PushResponse) -> dict[str, Any]:
    """A small summary for logs: how many of each code."""
    counts: dict[str, int] = {}
    for result in response.results:
        counts[result.code] = counts.get(result.code, 0) + 1
    return counts
