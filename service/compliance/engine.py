"""The service's boundary to the compliance engine (:mod:`signalos_core.compliance`).

Everything the service needs from the library goes through here: loading a profile version (built-in or stored
YAML) with the account's parameters, a bounded cache of compiled :class:`Engine` objects (compiling per request
would dominate the check endpoint), the JSON codec of :class:`AccountState`, the account's initial state, order
reservations, and turning engine results into the plain shapes the API and the audit trail use.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from service.problems import ProblemError, register_problem
from signalos_core import ProfileNotFoundError, ProfileSchemaError, ProfileSyntaxError
from signalos_core.audit import canonical_json
from signalos_core.compliance import (
    AccountState,
    DaySnapshot,
    Engine,
    FiredRule,
    Order,
    PendingOrder,
    Position,
    Profile,
    ProfileIssue,
    list_builtin_profiles,
    load_builtin_profile,
    load_profile,
)

__all__ = [
    "REGULATORY_PREFIXES",
    "RESERVATION_TTL",
    "EngineCache",
    "builtin_kind",
    "builtin_profiles",
    "decode_state",
    "encode_state",
    "ensure_day_start",
    "fired_dict",
    "initial_state",
    "load_builtin",
    "load_profile_text",
    "profile_problem",
    "release_for_fill",
    "reserve",
    "state_for_check",
]

register_problem(
    "profile_invalid",
    422,
    "Invalid compliance profile",
    "The YAML profile failed validation; `errors` lists every problem with its line, column, path and a "
    "suggestion where one exists.",
)
register_problem("profile_not_found", 404, "Profile not found", "No such profile or version is visible to you.")

#: Built-in profiles whose id starts with one of these are regulators' regimes (kind ``regulatory``).
REGULATORY_PREFIXES = ("esma", "fca", "asic", "nfa", "finra", "cftc", "sec")
#: How long an allowed opening order holds its place in exposure limits while waiting for its fill.
RESERVATION_TTL = dt.timedelta(seconds=120)
_state_decoder = msgspec.json.Decoder(AccountState)
_state_encoder = msgspec.json.Encoder()


def builtin_kind(profile_id: str) -> str:
    """``regulatory`` for a regulator's regime, else ``firm`` (a prop firm's published rules)."""
    return (
        "regulatory"
        if profile_id.split("-", maxsplit=1)[0].split(".", maxsplit=1)[0] in REGULATORY_PREFIXES
        else "firm"
    )


def _issue(issue: Any) -> ProfileIssue:
    return issue if isinstance(issue, ProfileIssue) else ProfileIssue(path="", message=str(issue))


def profile_problem(exc: ProfileSchemaError | ProfileSyntaxError) -> ProblemError:
    """The 422 problem listing every issue of an invalid profile (line, column, path, suggestion)."""
    if isinstance(exc, ProfileSchemaError):
        errors = [
            {
                "path": issue.path,
                "message": issue.message,
                "line": issue.line,
                "column": issue.column,
                "suggestion": issue.suggestion,
            }
            for issue in map(_issue, exc.issues)
        ]
    else:
        errors = [{"path": "", "message": str(exc), "line": exc.line, "column": exc.column, "suggestion": None}]
    return ProblemError("profile_invalid", detail=f"{len(errors)} problem(s) in the profile", extra={"errors": errors})


def load_profile_text(text: str, params: Mapping[str, Any] | None = None, resolver: Any = None) -> Profile:
    """Load YAML ``text`` strictly; any problem becomes the 422 ``profile_invalid`` problem."""
    try:
        return load_profile(text, params=params, resolver=resolver)
    except (ProfileSchemaError, ProfileSyntaxError) as exc:
        raise profile_problem(exc) from None
    except ProfileNotFoundError as exc:
        raise ProblemError("profile_not_found", detail=str(exc)) from None


def builtin_profiles() -> list[Any]:
    """Every shipped profile (id, version, title, effective date)."""
    return list(list_builtin_profiles())


def load_builtin(profile_id: str, params: Mapping[str, Any] | None) -> Profile:
    """Load a shipped profile with ``params`` applied (404 if there is none by that id)."""
    try:
        return load_builtin_profile(profile_id, params=params)
    except ProfileNotFoundError as exc:
        raise ProblemError("profile_not_found", detail=str(exc)) from None
    except (ProfileSchemaError, ProfileSyntaxError) as exc:
        raise profile_problem(exc) from None


class EngineCache:
    """Compiled engines keyed by (profile source identity, parameters); least recently used evicted."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._engines: OrderedDict[tuple[str, bytes], Engine] = OrderedDict()

    def peek(self, identity: str, params: Mapping[str, Any]) -> Engine | None:
        """The cached engine, or None."""
        with self._lock:
            return self._engines.get((identity, canonical_json(dict(params))))

    def get(self, identity: str, params: Mapping[str, Any], build: Any) -> Engine:
        """The engine for ``identity`` + ``params``, compiling it with ``build()`` (a Profile) on a miss."""
        key = (identity, canonical_json(dict(params)))
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
        engine = Engine(build())
        with self._lock:
            self._engines[key] = engine
            while len(self._engines) > self._size:
                self._engines.popitem(last=False)
        return engine


def encode_state(state: AccountState) -> str:
    """The stored JSON text of an account state."""
    return _state_encoder.encode(state).decode("utf-8")


def decode_state(text: str) -> AccountState:
    """Decode a stored account state."""
    return _state_decoder.decode(text)


def initial_state(account_id: str, size: Decimal, currency: str, now: dt.datetime) -> AccountState:
    """A new account: balance = equity = initial balance = its size."""
    return AccountState(
        account_id=account_id,
        balance=size,
        equity=size,
        initial_balance=size,
        currency=currency,
        as_of=now,
        created_at=now,
    )


def ensure_day_start(engine: Engine, state: AccountState, now: dt.datetime) -> AccountState:
    """Give a state without a day snapshot the current day's base under ``engine``'s day boundary."""
    if state.day_start is not None:
        return state
    snapshot = DaySnapshot(at=engine.clock.current_start(now), balance=state.balance, equity=state.equity)
    return msgspec.structs.replace(state, day_start=snapshot)


def _live_reservations(state: AccountState, now: dt.datetime) -> list[PendingOrder]:
    return [
        order
        for order in state.pending_orders
        if not order.id.startswith("rsv:") or order.placed_at is None or now - order.placed_at < RESERVATION_TTL
    ]


def state_for_check(state: AccountState, now: dt.datetime, order_id: str = "") -> AccountState:
    """The state an order is checked against: reserved (allowed, unfilled) orders count as open positions.

    The engine measures exposure on positions only; counting reservations is what stops two concurrent
    orders from both fitting a limit only one of them fits. A re-check of the same order id does not count
    its own earlier reservation.
    """
    own = f"rsv:{order_id}" if order_id else None
    reserved = [o for o in _live_reservations(state, now) if o.id.startswith("rsv:") and o.id != own]
    if not reserved:
        return state
    extra = [
        Position(
            id=o.id, symbol=o.symbol, side=o.side, size=o.size, entry=o.price, stop_loss=o.stop_loss,
            take_profit=o.take_profit, opened_at=o.placed_at,
        )
        for o in reserved
    ]  # fmt: skip
    return msgspec.structs.replace(state, positions=[*state.positions, *extra])


def reserve(state: AccountState, order: Order, reservation_id: str, now: dt.datetime) -> AccountState:
    """Record an allowed opening order as a reservation, replacing an earlier one with the same id (expired
    reservations are dropped on the way)."""
    pending = [o for o in _live_reservations(state, now) if o.id != f"rsv:{reservation_id}"]
    pending.append(
        PendingOrder(
            id=f"rsv:{reservation_id}", symbol=order.symbol, side=order.side, size=order.size, price=order.price,
            stop_loss=order.stop_loss, take_profit=order.take_profit, placed_at=now,
        )
    )  # fmt: skip
    return msgspec.structs.replace(state, pending_orders=pending)


def release_for_fill(state: AccountState, symbol: str, side: str, size: Decimal, now: dt.datetime) -> AccountState:
    """Drop the oldest reservation an opening fill consumes (same symbol and side, size up to the fill's)."""
    pending = _live_reservations(state, now)
    for index, order in enumerate(pending):
        if order.id.startswith("rsv:") and order.symbol == symbol and order.side == side and order.size <= size:
            del pending[index]
            break
    if pending == state.pending_orders:
        return state
    return msgspec.structs.replace(state, pending_orders=pending)


def fired_dict(rule: FiredRule) -> dict[str, Any]:
    """A fired rule as plain JSON (what the API returns and the audit record stores)."""
    return rule.to_dict()
