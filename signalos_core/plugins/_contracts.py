"""Typed contracts between the host and the three plugin kinds.

Plugins run in a separate worker process and exchange plain msgpack data (dicts, lists, strings, numbers) with
the host. The host never trusts what comes back: every reply is converted into the Structs below with
``forbid_unknown_fields`` before anything else sees it, so a plugin cannot smuggle extra fields or wrong types
into the trading pipeline. Money and prices are :class:`~decimal.Decimal` (sent as strings on the wire; plugins
may return strings or integers, never floats, so no binary rounding sneaks in).

The contracts are deliberately independent of ``signalos_core.parsing`` and ``signalos_core.compliance``: they are
the stable plugin ABI, and the host maps them to and from its internal types.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "AccountState",
    "ConnectionDiagnosis",
    "ConnectionStatus",
    "FetchSignalsRequest",
    "FetchSignalsResult",
    "OrderRequest",
    "OrderResult",
    "ParseRequest",
    "ParseResult",
    "PluginKind",
    "ProviderSignal",
    "StrategyDecision",
    "StrategyOutcome",
    "StrategyRequest",
    "TradeIntent",
    "convert_reply",
]

#: A price or size: finite and strictly positive (checked in ``_Contract.__post_init__``: msgspec constraints
#: do not apply to Decimal).
PositiveDecimal = Decimal
_POSITIVE_FIELDS = frozenset(
    {"size", "entry", "stop_loss", "take_profits", "price", "average_price", "value_per_point"}
)
#: Text fields coming back from a plugin are bounded so a reply cannot carry a novel.
ShortText = Annotated[str, msgspec.Meta(max_length=500)]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._/\-]+$")]
Side = Literal["buy", "sell"]


class PluginKind(enum.StrEnum):
    """What a plugin extends. The kind decides which methods the host calls."""

    PARSER = "parser"
    STRATEGY = "strategy"
    PROVIDER = "provider"


class _Contract(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base: strict, immutable, keyword-only; every Decimal finite, prices and sizes positive."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, Decimal):
                    continue
                if not item.is_finite():
                    raise ValueError(f"`{name}` must be a finite number, got {item}")
                if name in _POSITIVE_FIELDS and item <= 0:
                    raise ValueError(f"`{name}` must be greater than 0, got {item}")
                if name == "filled_size" and item < 0:
                    raise ValueError(f"`{name}` must not be negative, got {item}")


# ----------------------------------------------------------------------------------------------------- parser
class ParseRequest(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Input of ``parser.parse``: one channel message and where it came from."""

    text: Annotated[str, msgspec.Meta(max_length=20_000)]
    channel: str = ""
    received_at: dt.datetime | None = None
    locale: str = ""


class ParseResult(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A trade signal recognised by a parser plugin (``parse`` returns this as a dict, or ``None``)."""

    action: Literal["open", "close", "modify"] = "open"
    symbol: Symbol
    side: Side | None = None
    order_type: Literal["market", "limit", "stop"] = "market"
    entry: PositiveDecimal | None = None
    stop_loss: PositiveDecimal | None = None
    take_profits: Annotated[list[PositiveDecimal], msgspec.Meta(max_length=10)] = []
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    note: ShortText = ""


# --------------------------------------------------------------------------------------------------- strategy
class TradeIntent(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the copier is about to do for one account, before compliance."""

    intent_id: str
    symbol: Symbol
    side: Side
    size: PositiveDecimal
    order_type: Literal["market", "limit", "stop"] = "market"
    entry: PositiveDecimal | None = None
    stop_loss: PositiveDecimal | None = None
    take_profits: list[PositiveDecimal] = []


class AccountState(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The account as a strategy sees it (read-only snapshot)."""

    account_id: str
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
    balance: Decimal
    equity: Decimal
    open_positions: int = 0
    #: Value of one price unit per lot for the intent's symbol (for risk sizing); ``None`` if unknown.
    value_per_point: PositiveDecimal | None = None


class StrategyRequest(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Input of ``strategy.adjust``."""

    intent: TradeIntent
    account: AccountState


class StrategyDecision(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Reply of ``strategy.adjust``: accept as is, veto, or adjust size and stops (nothing else)."""

    decision: Literal["accept", "veto", "adjust"]
    reason: ShortText = ""
    size: PositiveDecimal | None = None
    stop_loss: PositiveDecimal | None = None
    take_profits: Annotated[list[PositiveDecimal], msgspec.Meta(max_length=10)] | None = None


class StrategyOutcome(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the host hands on to compliance: the (possibly adjusted) intent, or ``None`` when vetoed.

    Compliance always runs after the strategy on ``intent``; a strategy can make a trade smaller, larger or
    go away, but it cannot make a non-compliant trade pass.
    """

    intent: TradeIntent | None
    vetoed: bool
    reason: str = ""
    plugin_id: str = ""


# --------------------------------------------------------------------------------------------------- provider
class ConnectionStatus(enum.StrEnum):
    """Outcome of a connection test, precise enough for onboarding to tell the user what to fix."""

    OK = "ok"
    DNS_FAILURE = "dns_failure"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS_ERROR = "tls_error"
    BAD_CREDENTIALS = "bad_credentials"
    WRONG_SERVER = "wrong_server"
    PROTOCOL_ERROR = "protocol_error"
    ERROR = "error"


class ConnectionDiagnosis(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Result of ``provider.test_connection(config)`` (also reused by onboarding for built-in connectors)."""

    status: ConnectionStatus
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    hint: ShortText = ""
    detail: Annotated[str, msgspec.Meta(max_length=2000)] = ""

    @property
    def ok(self) -> bool:
        """True when the connection works."""
        return self.status is ConnectionStatus.OK


class FetchSignalsRequest(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Input of ``provider.fetch_signals``: the provider settings and a resume cursor."""

    config: dict[str, str] = {}
    cursor: str = ""
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class ProviderSignal(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One raw signal message from a signal source (the parser turns it into a trade)."""

    signal_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    channel: str = ""
    text: Annotated[str, msgspec.Meta(max_length=20_000)]
    posted_at: dt.datetime | None = None


class FetchSignalsResult(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Reply of ``provider.fetch_signals``."""

    signals: Annotated[list[ProviderSignal], msgspec.Meta(max_length=500)] = []
    cursor: str = ""


class OrderRequest(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Input of ``provider.submit_order`` for broker connections (already approved by compliance)."""

    config: dict[str, str] = {}
    client_order_id: str
    symbol: Symbol
    side: Side
    size: PositiveDecimal
    order_type: Literal["market", "limit", "stop"] = "market"
    price: PositiveDecimal | None = None
    stop_loss: PositiveDecimal | None = None
    take_profits: list[PositiveDecimal] = []


class OrderResult(_Contract, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Reply of ``provider.submit_order``."""

    status: Literal["accepted", "filled", "rejected"]
    client_order_id: str
    broker_order_id: str = ""
    filled_size: Decimal = Decimal(0)
    average_price: PositiveDecimal | None = None
    reason: ShortText = ""


def convert_reply(value: Any, contract: type[msgspec.Struct]) -> Any:
    """Convert untrusted reply data into ``contract``; raises :class:`msgspec.ValidationError` with the path.

    Floats are refused where a Decimal is expected (``strict`` conversion keeps strings and integers only for
    Decimal fields after the explicit pre-check below).
    """
    _refuse_floats_for_decimals(value, contract)
    return msgspec.convert(value, contract, strict=False)


@functools.cache
def _decimal_fields(contract: type[msgspec.Struct]) -> tuple[str, ...]:
    """Wire names of the Decimal fields of a flat contract (cached: msgspec.structs.fields is slow)."""
    return tuple(field.encode_name for field in msgspec.structs.fields(contract) if "Decimal" in repr(field.type))


def _refuse_floats_for_decimals(value: Any, contract: type[msgspec.Struct]) -> None:
    # msgspec would silently turn 0.1 into Decimal('0.1000000000000000055511151231257827'); a price must come
    # from text or an integer. Only the top-level and list fields of the reply contracts hold Decimals.
    if not isinstance(value, dict):
        return
    for name in _decimal_fields(contract):
        raw = value.get(name)
        items = raw if isinstance(raw, list) else [raw]
        if any(isinstance(item, float) for item in items):
            raise msgspec.ValidationError(f"Expected a decimal string or integer, got a float - at `$.{name}`")
