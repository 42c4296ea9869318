"""A :class:`ComplianceAdvisor` over the compliance engine (``signalos_core.compliance``).

On the device it runs the cached profile against the cached account state (advisory); on the server the same
class runs the profile and state current at apply time, which decides. Input the engine cannot evaluate fails
closed: the open is refused with rule id ``invalid_input`` and the engine's message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from signalos_core._errors import EvaluationError
from signalos_core.offline._actions import Action, OpenPayload
from signalos_core.offline._advice import AccountView, AdvisoryDecision

if TYPE_CHECKING:
    from signalos_core.compliance import AccountState, Engine

__all__ = ["EngineAdvisor"]


class EngineAdvisor:
    """Pre-trade check of ``open`` actions with a compliance :class:`~signalos_core.compliance.Engine`.

    ``state`` supplies the account state to check against (a cached snapshot on a device, the live state on the
    server); ``clock`` is the time of the check (the order's ``at``).
    """

    def __init__(
        self,
        engine: Engine,
        state: Callable[[], AccountState],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._state = state
        self._clock = clock or (lambda: datetime.now(UTC))

    def advise(self, action: Action, account: AccountView) -> AdvisoryDecision:
        """See :meth:`ComplianceAdvisor.advise`; the first fired rule names the refusal."""
        from signalos_core.compliance import Order

        payload = action.payload
        if not isinstance(payload, OpenPayload):
            return AdvisoryDecision(allowed=True)
        try:
            order = Order(
                id=str(action.action_id),
                symbol=payload.symbol,
                side=payload.side,
                size=payload.volume,
                at=self._clock(),
                order_type=payload.order_type,
                price=payload.limit_price if payload.limit_price is not None else action.ref_price,
                stop_loss=payload.stop_loss,
                take_profit=payload.take_profit,
            )
            decision = self._engine.check(self._state(), order)
        except EvaluationError as exc:
            return AdvisoryDecision(allowed=False, rule_id=exc.rule_id or "invalid_input", reason=str(exc))
        if decision.allowed:
            return AdvisoryDecision(allowed=True)
        first = decision.fired[0]
        return AdvisoryDecision(allowed=False, rule_id=first.rule_id, reason=first.message)
