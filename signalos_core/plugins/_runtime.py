"""Running installed plugins: activation with self-test, update with automatic rollback, typed calls.

:class:`PluginRuntime` ties a :class:`PluginRegistry` to sandboxed workers, one per active install (user,
account, plugin). Every reply is validated against the kind's contract on the host side. A contained failure
(anything but an ordinary exception raised by the plugin) counts against the install; after ``crash_limit`` of
them the install is quarantined with the reason, its worker stopped, and later calls are refused with a
:class:`PluginStateError` that says why.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

from signalos_core._errors import PackageVerificationError, PluginStateError, SandboxError
from signalos_core.plugins._contracts import (
    AccountState,
    ConnectionDiagnosis,
    FetchSignalsRequest,
    FetchSignalsResult,
    OrderRequest,
    OrderResult,
    ParseRequest,
    ParseResult,
    PluginKind,
    StrategyDecision,
    StrategyOutcome,
    StrategyRequest,
    TradeIntent,
    convert_reply,
)
from signalos_core.plugins._registry import InstallRecord, PluginRegistry
from signalos_core.plugins._sandbox import PluginWorker, SandboxPolicy

__all__ = ["METHOD_CONTRACTS", "PluginRuntime", "call_plugin"]

#: (kind, method) -> (request contract, reply contract); the payload of ``test_connection`` is a str->str dict.
METHOD_CONTRACTS: dict[tuple[str, str], tuple[Any, type[msgspec.Struct]]] = {
    ("parser", "parse"): (ParseRequest, ParseResult),
    ("strategy", "adjust"): (StrategyRequest, StrategyDecision),
    ("provider", "test_connection"): (dict[str, str], ConnectionDiagnosis),
    ("provider", "fetch_signals"): (FetchSignalsRequest, FetchSignalsResult),
    ("provider", "submit_order"): (OrderRequest, OrderResult),
}

_Key = tuple[str, str, str]
#: Failures caused by the plugin's own code raising are its business; everything else is a strike.
_NOT_A_STRIKE = frozenset({"plugin_error"})


def call_plugin(worker: PluginWorker, method: str, payload: Any) -> Any:
    """Call ``method`` on a worker with contract checks on both sides (used by ``signalos plugin run``).

    ``payload`` is plain data (e.g. decoded JSON); it is validated against the request contract, and the reply
    converted to the reply contract (``None`` allowed from ``parse`` only). Raises :class:`SandboxError`
    (``bad_request``, ``bad_reply`` or a sandbox reason).
    """
    kind = str(worker.manifest.kind)
    contracts = METHOD_CONTRACTS.get((kind, method))
    if contracts is None:
        raise SandboxError(
            f"a {kind} plugin has no method {method!r}", reason="bad_request", plugin_id=worker.manifest.id
        )
    request_type, reply_type = contracts
    try:
        request = msgspec.convert(payload, request_type, strict=False)
    except msgspec.ValidationError as exc:
        raise SandboxError(
            f"invalid input for {method}: {exc}", reason="bad_request", plugin_id=worker.manifest.id
        ) from None
    result = worker.call(method, msgspec.to_builtins(request))
    if result is None and reply_type is ParseResult:
        return None
    try:
        return convert_reply(result, reply_type)
    except msgspec.ValidationError as exc:
        raise SandboxError(
            f"{worker.manifest.id} returned an invalid {reply_type.__name__}: {exc}",
            reason="bad_reply",
            plugin_id=worker.manifest.id,
        ) from None


class PluginRuntime:
    """Activate, update, remove and call plugins of a registry, each in its own sandboxed worker."""

    def __init__(self, registry: PluginRegistry, *, policy: SandboxPolicy | None = None, crash_limit: int = 3):
        self.registry = registry
        self.policy = policy or SandboxPolicy()
        self.crash_limit = crash_limit
        self._workers: dict[_Key, PluginWorker] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop every worker (the registry stays open)."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def __enter__(self) -> PluginRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- lifecycle
    def _start(self, record: InstallRecord) -> PluginWorker:
        """Re-verify the stored files, start a worker and run the plugin's self-test."""
        key = (record.user_id, record.account_id, record.plugin_id)
        manifest = self.registry.verify_stored(record.plugin_id, record.version)
        data_dir = self.registry.data_dir(*key) if manifest.permissions.files == "data" else None
        worker = PluginWorker(
            self.registry.package_dir(record.plugin_id, record.version), manifest, data_dir=data_dir, policy=self.policy
        )
        try:
            worker.start()
            passed = worker.call("self_test")
        except SandboxError:
            worker.close()
            raise
        if passed is not True and passed is not None:
            worker.close()
            raise SandboxError(
                f"{record.plugin_id} {record.version} failed its self-test: {passed!r}",
                reason="self_test_failed",
                plugin_id=record.plugin_id,
            )
        return worker

    def _replace_worker(self, key: _Key, worker: PluginWorker | None) -> None:
        with self._lock:
            old = self._workers.pop(key, None)
            if worker is not None:
                self._workers[key] = worker
        if old is not None:
            old.close()

    def activate(self, user_id: str, account_id: str, plugin_id: str) -> InstallRecord:
        """Start the plugin (verified files, self-test) and mark it ``active``.

        If it cannot start the install stays where it was and the :class:`SandboxError` or
        :class:`PackageVerificationError` (e.g. ``revoked_key``, ``modified_file``) propagates.
        """
        record = self.registry.get(user_id, account_id, plugin_id)
        if record.state not in ("verified", "inactive"):
            raise PluginStateError(
                f"{plugin_id} cannot be activated from {record.state}"
                + (f": {record.reason}" if record.reason else ""),
                state=record.state,
                plugin_id=plugin_id,
            )
        worker = self._start(record)
        self._replace_worker((user_id, account_id, plugin_id), worker)
        return self.registry.transition(user_id, account_id, plugin_id, "active")

    def deactivate(self, user_id: str, account_id: str, plugin_id: str) -> InstallRecord:
        """Stop the worker and mark the install ``inactive``."""
        record = self.registry.transition(user_id, account_id, plugin_id, "inactive")
        self._replace_worker((user_id, account_id, plugin_id), None)
        return record

    def remove(self, user_id: str, account_id: str, plugin_id: str) -> InstallRecord:
        """Stop the worker and remove the install (and its data folder)."""
        self._replace_worker((user_id, account_id, plugin_id), None)
        return self.registry.remove(user_id, account_id, plugin_id)

    def update(self, user_id: str, account_id: str, data: bytes, *, pin: bool = False) -> InstallRecord:
        """Install a new version over an existing install, with automatic rollback.

        The new version is verified and stored, then (if the install was active) started and self-tested. If
        it fails to start or its self-test fails, the previous version is put back (state as before, the
        failure in ``reason`` and in the event history) and the error is raised. A quarantined install ends
        ``inactive`` after a successful update: the user re-activates it deliberately.
        """
        package = self.registry.store(data, pin=pin)
        manifest = package.manifest
        plugin_id = manifest.id
        key = (user_id, account_id, plugin_id)
        before = self.registry.get(*key)
        if before.version == manifest.version:
            raise PluginStateError(
                f"{plugin_id} {manifest.version} is already installed", state=before.state, plugin_id=plugin_id
            )
        self.registry.transition(*key, "updating", version=manifest.version, previous_version=before.version)
        was_active = before.state == "active"
        if not was_active:
            return self.registry.transition(*key, "inactive", version=manifest.version, reset_crashes=True)
        try:
            worker = self._start(self.registry.get(*key))
        except (SandboxError, PackageVerificationError) as exc:
            reason = f"update to {manifest.version} rolled back: {exc}"
            self.registry.transition(
                *key, "active", version=before.version, previous_version=manifest.version, reason=reason
            )
            raise
        self._replace_worker(key, worker)
        return self.registry.transition(*key, "active", reason=f"updated from {before.version}", reset_crashes=True)

    # ------------------------------------------------------------------------------------------- calls
    def _worker(self, key: _Key) -> PluginWorker:
        with self._lock:
            worker = self._workers.get(key)
        if worker is not None:
            return worker
        record = self.registry.get(*key)
        if record.state != "active":
            raise PluginStateError(
                f"{key[2]} is {record.state}" + (f": {record.reason}" if record.reason else ""),
                state=record.state,
                plugin_id=key[2],
            )
        # Active in the registry but no worker in this process (host restarted): start it now.
        worker = self._start(record)
        self._replace_worker(key, worker)
        return worker

    def call(self, user_id: str, account_id: str, plugin_id: str, method: str, payload: Any = None) -> Any:
        """Call a plugin method with plain data and return its plain (unvalidated) result.

        Contained failures are counted; at the limit the install is quarantined and its worker stopped.
        """
        key = (user_id, account_id, plugin_id)
        worker = self._worker(key)
        try:
            return worker.call(method, payload)
        except SandboxError as exc:
            if exc.reason not in _NOT_A_STRIKE:
                record = self.registry.record_crash(*key, f"{exc.reason}: {exc}", limit=self.crash_limit)
                if record.state == "quarantined":
                    self._replace_worker(key, None)
            raise

    def _typed(self, key: _Key, kind: PluginKind, method: str, payload: Any, contract: type[msgspec.Struct]) -> Any:
        manifest = self._worker(key).manifest
        if manifest.kind is not kind:
            raise PluginStateError(
                f"{key[2]} is a {manifest.kind} plugin, not a {kind}", state="active", plugin_id=key[2]
            )
        result = self.call(*key, method, msgspec.to_builtins(payload))
        if result is None and contract is ParseResult:
            return None
        try:
            return convert_reply(result, contract)
        except msgspec.ValidationError as exc:
            error = SandboxError(
                f"{key[2]} returned an invalid {contract.__name__}: {exc}", reason="bad_reply", plugin_id=key[2]
            )
            self.registry.record_crash(*key, f"bad_reply: {exc}", limit=self.crash_limit)
            raise error from None

    def parse(self, user_id: str, account_id: str, plugin_id: str, request: ParseRequest) -> ParseResult | None:
        """Run a parser plugin on one message; ``None`` when the format is not recognised."""
        result: ParseResult | None = self._typed(
            (user_id, account_id, plugin_id), PluginKind.PARSER, "parse", request, ParseResult
        )
        return result

    def apply_strategy(
        self, user_id: str, account_id: str, plugin_id: str, intent: TradeIntent, account: AccountState
    ) -> StrategyOutcome:
        """Let a strategy accept, veto or adjust ``intent``; returns what goes on to compliance.

        Compliance is applied by the caller AFTER this, on ``outcome.intent``: a strategy only changes size,
        stop loss and take profits (the symbol, side and id are the host's), and cannot skip compliance.
        """
        request = StrategyRequest(intent=intent, account=account)
        decision: StrategyDecision = self._typed(
            (user_id, account_id, plugin_id), PluginKind.STRATEGY, "adjust", request, StrategyDecision
        )
        if decision.decision == "veto":
            return StrategyOutcome(intent=None, vetoed=True, reason=decision.reason, plugin_id=plugin_id)
        if decision.decision == "accept":
            return StrategyOutcome(intent=intent, vetoed=False, reason=decision.reason, plugin_id=plugin_id)
        adjusted = msgspec.structs.replace(
            intent,
            size=decision.size if decision.size is not None else intent.size,
            stop_loss=decision.stop_loss if decision.stop_loss is not None else intent.stop_loss,
            take_profits=decision.take_profits if decision.take_profits is not None else intent.take_profits,
        )
        return StrategyOutcome(intent=adjusted, vetoed=False, reason=decision.reason, plugin_id=plugin_id)

    def test_connection(
        self, user_id: str, account_id: str, plugin_id: str, config: dict[str, str]
    ) -> ConnectionDiagnosis:
        """Ask a provider plugin to diagnose its connection with ``config`` (onboarding)."""
        diagnosis: ConnectionDiagnosis = self._typed(
            (user_id, account_id, plugin_id), PluginKind.PROVIDER, "test_connection", config, ConnectionDiagnosis
        )
        return diagnosis

    def fetch_signals(
        self, user_id: str, account_id: str, plugin_id: str, request: FetchSignalsRequest
    ) -> FetchSignalsResult:
        """Fetch new raw signals from a signal-source provider."""
        result: FetchSignalsResult = self._typed(
            (user_id, account_id, plugin_id), PluginKind.PROVIDER, "fetch_signals", request, FetchSignalsResult
        )
        return result

    def submit_order(self, user_id: str, account_id: str, plugin_id: str, order: OrderRequest) -> OrderResult:
        """Send an order (already approved by compliance) through a broker provider."""
        result: OrderResult = self._typed(
            (user_id, account_id, plugin_id), PluginKind.PROVIDER, "submit_order", order, OrderResult
        )
        if result.client_order_id != order.client_order_id:
            raise SandboxError(
                f"{plugin_id} answered for order {result.client_order_id!r}, not {order.client_order_id!r}",
                reason="bad_reply",
                plugin_id=plugin_id,
            )
        return result
