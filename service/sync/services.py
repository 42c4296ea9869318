"""Sync services: the library's :class:`~signalos_core.offline.SyncServer` over the service database.

Each push runs in the request's transaction (committed by the session handler on success, rolled back on any
error): the device is checked to belong to the caller, the user's paper account row is updated first (which
serialises that user's pushes), then every action is decided by the library and its outcome row is written next
to its effect. The library code is synchronous; it runs through ``AsyncSession.run_sync`` on the same
connection and transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
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
    sync_ack,
    sync_action_seen,
    sync_cancelled_signal,
    sync_client_action,
    sync_device,
    sync_setting,
)
from signalos_core.offline import (
    ActionOutcome,
    ComplianceAdvisor,
    PaperBroker,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    SettingValue,
    SimpleLimits,
    SyncServer,
)

__all__ = ["SqlServerStore", "SyncService"]

register_problem(
    "device_not_yours",
    403,
    "Device belongs to another user",
    "This device id is registered to another account; a device can only sync for the user it first synced as.",
)
register_problem(
    "sync_busy",
    503,
    "Sync busy",
    "A concurrent push for the same action raced this one; retry (the server dedupes by action id).",
)

_outcome_decoder = msgspec.json.Decoder(ActionOutcome)
_value_decoder = msgspec.json.Decoder(bool | int | str | None)


class SqlServerStore:
    """:class:`signalos_core.offline.ServerStore` on the service database (sync Session inside ``run_sync``)."""

    def __init__(self, session: Session, user_id: uuid.UUID) -> None:
        self._session = session
        self._user = user_id

    def _uid(self, user_id: str) -> uuid.UUID:
        if user_id != str(self._user):  # the library passes the id it was given; one store serves one user
            raise ValueError(f"store for {self._user} used for {user_id}")
        return self._user

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """The request transaction is the unit: the handler commits on success and rolls back on any error."""
        yield

    def outcome(self, user_id: str, action_id: uuid.UUID) -> tuple[ActionOutcome, str] | None:
        """See the ServerStore protocol."""
        row = self._session.execute(
            select(sync_client_action.c.body, sync_client_action.c.digest, sync_client_action.c.server_seq).where(
                sync_client_action.c.action_id == str(action_id), sync_client_action.c.user_id == self._uid(user_id)
            )
        ).first()
        if row is None:
            return None
        return msgspec.structs.replace(_outcome_decoder.decode(row.body), server_seq=int(row.server_seq)), row.digest

    def record(self, user_id: str, device_id: str, outcome: ActionOutcome, digest: str) -> ActionOutcome:
        """See the ServerStore protocol (UNIQUE action_id: a second record fails the transaction)."""
        body = msgspec.json.encode(msgspec.structs.replace(outcome, server_seq=None)).decode()
        server_seq = self._session.execute(
            insert(sync_client_action)
            .values(action_id=str(outcome.action_id), user_id=self._uid(user_id), device_id=device_id, digest=digest,
                    code=outcome.code, body=body, created_at=datetime.now(UTC))
            .returning(sync_client_action.c.server_seq)
        ).scalar_one()  # fmt: skip
        return msgspec.structs.replace(outcome, server_seq=int(server_seq))

    def outcomes_since(self, user_id: str, device_id: str, cursor: int, limit: int) -> list[ActionOutcome]:
        """See the ServerStore protocol."""
        rows = self._session.execute(
            select(sync_client_action.c.body, sync_client_action.c.server_seq)
            .where(sync_client_action.c.user_id == self._uid(user_id), sync_client_action.c.device_id == device_id,
                   sync_client_action.c.server_seq > cursor)
            .order_by(sync_client_action.c.server_seq)
            .limit(limit)
        ).all()  # fmt: skip
        return [msgspec.structs.replace(_outcome_decoder.decode(r.body), server_seq=int(r.server_seq)) for r in rows]

    def first_seen(self, user_id: str, action_id: uuid.UUID, now: datetime) -> datetime:
        """See the ServerStore protocol."""
        uid = self._uid(user_id)
        seen = self._session.execute(
            select(sync_action_seen.c.first_seen).where(
                sync_action_seen.c.user_id == uid, sync_action_seen.c.action_id == str(action_id)
            )
        ).scalar_one_or_none()
        if seen is not None:
            return seen if seen.tzinfo else seen.replace(tzinfo=UTC)
        self._session.execute(insert(sync_action_seen).values(user_id=uid, action_id=str(action_id), first_seen=now))
        return now

    def settings(self, user_id: str) -> dict[str, SettingValue]:
        """See the ServerStore protocol."""
        rows = self._session.execute(
            select(sync_setting.c.field, sync_setting.c.value).where(sync_setting.c.user_id == self._uid(user_id))
        ).all()
        return {row.field: _value_decoder.decode(row.value) for row in rows}

    def set_settings(self, user_id: str, changes: Mapping[str, SettingValue]) -> None:
        """See the ServerStore protocol (last writer wins per field, in this transaction's order)."""
        uid = self._uid(user_id)
        for field, value in changes.items():
            encoded = msgspec.json.encode(value).decode()
            updated = self._session.execute(
                update(sync_setting)
                .where(sync_setting.c.user_id == uid, sync_setting.c.field == field)
                .values(value=encoded)
            ).rowcount  # type: ignore[attr-defined]
            if not updated:
                self._session.execute(insert(sync_setting).values(user_id=uid, field=field, value=encoded))

    def cancelled_signals(self, user_id: str) -> frozenset[str]:
        """See the ServerStore protocol."""
        rows = self._session.execute(
            select(sync_cancelled_signal.c.signal_id).where(sync_cancelled_signal.c.user_id == self._uid(user_id))
        ).scalars()
        return frozenset(rows)

    def record_ack(self, user_id: str, subject: str) -> None:
        """See the ServerStore protocol."""
        uid = self._uid(user_id)
        exists = self._session.execute(
            select(sync_ack.c.subject).where(sync_ack.c.user_id == uid, sync_ack.c.subject == subject)
        ).first()
        if exists is None:
            self._session.execute(insert(sync_ack).values(user_id=uid, subject=subject, acked_at=datetime.now(UTC)))


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

    async def push(self, user_id: uuid.UUID, request: PushRequest) -> PushResponse:
        """Apply one batch for the caller's device."""

        def apply(session: Session) -> PushResponse:
            # The first statement writes: it takes the user's lock before anything is read (no stale snapshot).
            broker = _lock_paper_account(session, user_id)
            self._claim_device(session, user_id, request.device_id)
            server = SyncServer(SqlServerStore(session, user_id), broker, self._compliance)
            response = server.push(str(user_id), request)
            _save_paper_account(session, user_id, broker)
            return response

        try:
            return await self._session.run_sync(apply)
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
            return SyncServer(SqlServerStore(session, user_id), broker, self._compliance).pull(str(user_id), request)

        return await self._session.run_sync(read)

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
