"""Offline-first operation: a durable local outbox, the offline client, and the sync protocol and logic.

Device side: :class:`OfflineClient` records every action in an :class:`Outbox` (SQLite, committed before the
call returns) and :class:`SyncEngine` pushes, pulls and keeps the sync report. Server side: :class:`SyncServer`
applies batches at most once per action id against a :class:`ServerStore` and an :class:`ExecutionProvider`
(:class:`PaperBroker` for paper trading). See ``docs/offline.md`` for the guarantees and the outcome codes.
"""

from __future__ import annotations

from signalos_core._errors import (
    BatchRefusedError,
    DeviceForkError,
    ExecutionUnavailableError,
    OfflineError,
    OutboxError,
    SyncTransportError,
)
from signalos_core.offline._actions import (
    ORDER_KINDS,
    AckPayload,
    Action,
    ActionKind,
    CancelPayload,
    ClosePayload,
    ModifyPayload,
    OpenPayload,
    Payload,
    SettingsPayload,
    SettingValue,
    Side,
    client_order_id,
    close_order_id,
    order_id_for,
    position_id_for,
)
from signalos_core.offline._advice import (
    AccountView,
    AdvisoryDecision,
    ComplianceAdvisor,
    SignalIntent,
    SignalParser,
    SimpleLimits,
)
from signalos_core.offline._client import ClientPolicy, OfflineClient, ReceiveResult
from signalos_core.offline._compliance import EngineAdvisor
from signalos_core.offline._outbox import Outbox, OutboxRecord, ReportEntry
from signalos_core.offline._paper import ExecutionProvider, Fill, OrderRequest, PaperBroker
from signalos_core.offline._parsing import ParserAdapter
from signalos_core.offline._protocol import (
    MAX_BATCH,
    ActionOutcome,
    OrderView,
    Outcome,
    OutcomeCategory,
    PositionView,
    PullRequest,
    PullResponse,
    PushedAction,
    PushRequest,
    PushResponse,
    ServerState,
)
from signalos_core.offline._server import (
    LocalTransport,
    ServerPolicy,
    ServerStore,
    SyncServer,
    action_digest,
)
from signalos_core.offline._server_memory import InMemoryServerStore
from signalos_core.offline._server_sqlite import SQLiteServerStore
from signalos_core.offline._sync import Backoff, LocalView, PendingItem, SyncEngine, SyncSummary, SyncTransport, rebase
from signalos_core.offline._wire import DecodedPush, InvalidAction, decode_push

__all__ = [
    "MAX_BATCH",
    "ORDER_KINDS",
    "AccountView",
    "AckPayload",
    "Action",
    "ActionKind",
    "ActionOutcome",
    "AdvisoryDecision",
    "Backoff",
    "BatchRefusedError",
    "CancelPayload",
    "ClientPolicy",
    "ClosePayload",
    "ComplianceAdvisor",
    "DecodedPush",
    "DeviceForkError",
    "EngineAdvisor",
    "ExecutionProvider",
    "ExecutionUnavailableError",
    "Fill",
    "InMemoryServerStore",
    "InvalidAction",
    "LocalTransport",
    "LocalView",
    "ModifyPayload",
    "OfflineClient",
    "OfflineError",
    "OpenPayload",
    "OrderRequest",
    "OrderView",
    "Outbox",
    "OutboxError",
    "OutboxRecord",
    "Outcome",
    "OutcomeCategory",
    "PaperBroker",
    "ParserAdapter",
    "Payload",
    "PendingItem",
    "PositionView",
    "PullRequest",
    "PullResponse",
    "PushRequest",
    "PushResponse",
    "PushedAction",
    "ReceiveResult",
    "ReportEntry",
    "SQLiteServerStore",
    "ServerPolicy",
    "ServerState",
    "ServerStore",
    "SettingValue",
    "SettingsPayload",
    "Side",
    "SignalIntent",
    "SignalParser",
    "SimpleLimits",
    "SyncEngine",
    "SyncServer",
    "SyncSummary",
    "SyncTransport",
    "SyncTransportError",
    "action_digest",
    "client_order_id",
    "close_order_id",
    "decode_push",
    "order_id_for",
    "position_id_for",
    "rebase",
]
