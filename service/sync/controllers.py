"""HTTP endpoints of offline sync: ``POST /api/sync/push``, ``GET /api/sync/pull`` (trading guards; a device id
belongs to the first user that synced it), and the platform admin's paper price feed."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from service.security.guards import TRADING_GUARDS, authenticated, current_user, platform_admin_only
from service.sync.compliance import account_advisor
from service.sync.schemas import PullResponse, PushRequest, PushResponse, QuoteIn, QuoteOut
from service.sync.services import SyncService
from signalos_core.offline import MAX_BATCH, PullRequest

__all__ = ["PaperQuoteController", "SyncController"]


def _service(request: Request[Any, Any, Any], session: AsyncSession) -> SyncService:
    return SyncService(session, getattr(request.app.state, "sync_compliance", None))


class SyncController(Controller):
    """A device pushes its queued actions and pulls outcomes and the account state."""

    path = "/api/sync"
    tags = ["sync"]
    guards = TRADING_GUARDS

    @post("/push", status_code=HTTP_200_OK, summary="Push a batch of queued actions")
    async def push(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        data: JSONBody[PushRequest],
        account_id: Annotated[
            UUID | None,
            QueryParameter(
                description="Trading account whose compliance mode, as current at apply time, checks every order "
                "(refusals are `rejected:compliance:<rule-id>`)."
            ),
        ] = None,
    ) -> PushResponse:
        """Apply actions in order, at most once each; one outcome per action (a resend gets ``duplicate``)."""
        user = current_user(request)
        if account_id is None:
            return await _service(request, db_session).push(user.id, data)
        advisor = await account_advisor(db_session, request, user, account_id)
        return await SyncService(db_session, advisor).push(user.id, data)

    @get("/pull", summary="Pull outcomes and the account state")
    async def pull(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[Any, Any, Any],
        device_id: Annotated[str, QueryParameter(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
        cursor: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_BATCH)] = 500,
    ) -> PullResponse:
        """This device's outcomes after ``cursor`` (ascending), the positions, orders and settings, the new cursor."""
        pull = PullRequest(device_id=device_id, cursor=cursor, limit=limit)
        return await _service(request, db_session).pull(current_user(request).id, pull)


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
