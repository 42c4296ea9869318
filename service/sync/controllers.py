"""HTTP endpoints of offline sync: ``POST /api/sync/push``, ``GET /api/sync/pull`` (trading guards; a device id
belongs to the first user that synced it), upstream signal cancellation (platform admins, and the firm admins of
the account's firm), and the platform admin's paper price feed.

The push body is decoded action by action (:func:`signalos_core.offline.decode_push`): an invalid action is
answered ``rejected:invalid`` naming the field (or ``rejected:client_upgrade_required`` for a kind or payload
type this server does not know) and the rest of the batch applies; only what cannot be attributed to one action
refuses the whole batch (:func:`~service.sync.push_body.batch_refused`: 400 ``validation_error`` or 422
``unprocessable``, naming the field). The body is documented by :class:`~service.sync.push_body.PushOperation`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Final
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from service.compliance.models import TradingAccount
from service.compliance.services import firm_admin_of, is_platform_admin
from service.problems import ProblemError
from service.security.guards import (
    TRADING_GUARDS,
    authenticated,
    current_user,
    firm_admin_or_platform_admin,
    platform_admin_only,
)
from service.sync.compliance import account_advisor, record_decisions, save_reservations
from service.sync.push_body import PushOperation, batch_refused
from service.sync.schemas import PullResponse, PushResponse, QuoteIn, QuoteOut, SignalCancelIn, SignalCancelOut
from service.sync.services import SyncService
from signalos_core.offline import MAX_BATCH, PullRequest, decode_push

__all__ = ["MAX_CURSOR", "PaperQuoteController", "SignalCancelController", "SyncController"]

#: The largest pull cursor: server sequence numbers are 64-bit signed integers in both databases.
MAX_CURSOR: Final = 2**63 - 1


def _service(request: Request[Any, Any, Any], session: AsyncSession) -> SyncService:
    return SyncService(session, getattr(request.app.state, "sync_compliance", None))


class SyncController(Controller):
    """A device pushes its queued actions and pulls outcomes and the account state."""

    path = "/api/sync"
    tags = ["sync"]
    guards = TRADING_GUARDS

    @post("/push", status_code=HTTP_200_OK, summary="Push a batch of queued actions", operation_class=PushOperation)
    async def push(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        account_id: Annotated[
            UUID | None,
            QueryParameter(
                description="Trading account whose compliance mode, as current at apply time, checks every order "
                "(refusals are `rejected:compliance:<rule-id>`)."
            ),
        ] = None,
    ) -> PushResponse:
        """Apply actions in order, at most once each; one outcome per action (a resend gets ``duplicate``).

        Body: a ``PushRequest`` (``device_id``, ``sent_at_device``, up to 1,000 ``actions``). Read raw so that each
        action is validated on its own.
        """
        user = current_user(request)
        try:
            data = decode_push(await request.body())
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise batch_refused(exc) from exc
        if account_id is None:
            return await _service(request, db_session).push(user.id, data)
        # Same per-account serialisation as the compliance endpoints, so audit appends never race them here.
        async with request.app.state.compliance_locks.get(account_id):
            advisor = await account_advisor(db_session, request, user, account_id)
            response = await SyncService(db_session, advisor).push(user.id, data)
            await record_decisions(db_session, request, user, advisor, data.device_id)
            await save_reservations(db_session, advisor, response)
            return response

    @get("/pull", summary="Pull outcomes and the account state")
    async def pull(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        device_id: Annotated[str, QueryParameter(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
        cursor: Annotated[
            int,
            QueryParameter(
                ge=0,
                le=MAX_CURSOR,
                description="The `cursor` of the previous pull (0 at first)",
                # Litestar documents bounds as floats, and float(2**63 - 1) rounds up to 2**63.
                schema_extra={"maximum": MAX_CURSOR},
            ),
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_BATCH)] = 500,
    ) -> PullResponse:
        """This device's outcomes after ``cursor`` (ascending), the positions, orders and settings, the new cursor."""
        pull = PullRequest(device_id=device_id, cursor=cursor, limit=limit)
        return await _service(request, db_session).pull(current_user(request).id, pull)


class SignalCancelController(Controller):
    """An upstream signal was cancelled: later-applied opens copying it on that account's user are refused."""

    path = "/api/sync/signals"
    tags = ["sync"]
    guards = [authenticated, firm_admin_or_platform_admin]

    @post("/{signal_id:str}/cancel", status_code=HTTP_200_OK, summary="Cancel a signal upstream")
    async def cancel(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        signal_id: Annotated[str, Parameter(pattern=r"^[A-Za-z0-9._:-]{1,80}$", description="e.g. gold-vip:9001")],
        data: JSONBody[SignalCancelIn],
    ) -> SignalCancelOut:
        """Record the cancellation for the owner of ``account_id`` (platform admins: any account; firm admins:
        their firm's accounts). Opens copying the signal applied from now on get ``rejected:signal_cancelled``;
        idempotent (``already_cancelled``)."""
        user = current_user(request)
        account = await db_session.get(TradingAccount, data.account_id)
        if account is None or not (is_platform_admin(user) or firm_admin_of(user, account.firm_id)):
            raise ProblemError("not_found", detail="No such trading account")
        cancelled_at, already = await _service(request, db_session).cancel_signal(account.owner_id, signal_id)
        return SignalCancelOut(
            signal_id=signal_id, account_id=account.id, user_id=account.owner_id, cancelled_at=cancelled_at,
            already_cancelled=already,
        )  # fmt: skip


class PaperQuoteController(Controller):
    """The paper-trading price feed (platform admins): market orders fill at it, SL/TP trigger on it."""

    path = "/api/paper/quotes"
    tags = ["sync"]
    guards = [authenticated, platform_admin_only]

    @put("/{symbol:str}", summary="Set a paper price")
    async def set_quote(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        symbol: Annotated[str, Parameter(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="e.g. EURUSD")],
        data: JSONBody[QuoteIn],
    ) -> QuoteOut:
        """Store the price and trigger stops, targets and limit orders of every paper account holding it."""
        triggered = await _service(request, db_session).set_quote(symbol, Decimal(data.price))
        return QuoteOut(symbol=symbol, price=data.price, triggered=triggered)
