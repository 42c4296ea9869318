"""The public API of ``signalos_core.offline`` is exactly its curated ``__all__``."""

from __future__ import annotations

from signalos_core import offline

EXPECTED = {
    "MAX_BATCH", "ORDER_KINDS",
    "AccountView", "AckPayload", "Action", "ActionKind", "ActionOutcome", "AdvisoryDecision", "Backoff",
    "CancelPayload", "ClientPolicy", "ClosePayload", "ComplianceAdvisor", "EngineAdvisor", "ExecutionProvider",
    "ExecutionUnavailableError", "Fill", "InMemoryServerStore", "LocalTransport", "LocalView", "ModifyPayload",
    "OfflineClient", "OfflineError", "OpenPayload", "OrderRequest", "OrderView", "Outbox", "OutboxError",
    "OutboxRecord", "Outcome", "OutcomeCategory", "PaperBroker", "ParserAdapter", "Payload", "PendingItem", "PositionView",
    "PullRequest", "PullResponse", "PushRequest", "PushResponse", "PushedAction", "ReceiveResult", "ReportEntry",
    "SQLiteServerStore", "ServerPolicy", "ServerState", "ServerStore", "SettingValue", "SettingsPayload", "Side", "SignalIntent",
    "SignalParser", "SimpleLimits", "SyncEngine", "SyncServer", "SyncSummary", "SyncTransport",
    "SyncTransportError", "action_digest", "client_order_id", "close_order_id", "order_id_for",
    "position_id_for", "rebase",
    "BatchRefusedError", "DecodedPush", "DeviceForkError", "InvalidAction", "decode_push",
}  # fmt: skip
_TYPE_ALIASES = {"ActionKind", "OutcomeCategory", "Payload", "SettingValue", "Side"}


def test_all_is_pinned() -> None:
    assert set(offline.__all__) == EXPECTED
    assert len(offline.__all__) == len(EXPECTED), "no duplicates in __all__"


def test_every_public_callable_is_documented() -> None:
    for name in offline.__all__:
        value = getattr(offline, name)
        if callable(value) and not name.isupper() and name not in _TYPE_ALIASES:
            assert value.__doc__, f"{name} has no docstring"


def test_errors_are_the_shared_tree() -> None:
    import signalos_core._errors as errors

    assert offline.OutboxError is errors.OutboxError
    assert issubclass(offline.OutboxError, OSError)
    assert issubclass(offline.SyncTransportError, ConnectionError)
    assert issubclass(offline.ExecutionUnavailableError, errors.OfflineError)
    assert issubclass(offline.SyncTransportError, errors.SignalOSError)
