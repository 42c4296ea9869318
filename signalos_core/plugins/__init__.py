"""Third-party plugins: contracts, manifests, signed packages, the install registry and the sandbox.

Typical host flow (the marketplace service does the same with its own keyring)::

    keyring = Keyring([publisher_key])
    registry = PluginRegistry(root, keyring)
    registry.install(package_bytes, user_id="u1", account_id="acc1")     # verify + store, state "verified"
    with PluginRuntime(registry) as runtime:
        runtime.activate("u1", "acc1", "acme.gold-format")                # sandboxed worker + self-test
        result = runtime.parse("u1", "acc1", "acme.gold-format", ParseRequest(text="BUY XAUUSD"))

Plugins are untrusted: each active one runs in its own worker process (see :class:`PluginWorker`), every reply
is validated against the kind's contract, and compliance runs after any strategy.
"""

from __future__ import annotations

from signalos_core._errors import (
    ManifestError,
    PackageVerificationError,
    PluginError,
    PluginStateError,
    SandboxError,
)
from signalos_core.plugins._contracts import (
    AccountState,
    ConnectionDiagnosis,
    ConnectionStatus,
    FetchSignalsRequest,
    FetchSignalsResult,
    OrderRequest,
    OrderResult,
    ParseRequest,
    ParseResult,
    PluginKind,
    ProviderSignal,
    StrategyDecision,
    StrategyOutcome,
    StrategyRequest,
    TradeIntent,
)
from signalos_core.plugins._manifest import (
    MANIFEST_FILE,
    RESERVED_PUBLISHERS,
    HostRange,
    Manifest,
    Permissions,
    host_compatible,
    manifest_schema,
    parse_manifest,
    parse_version,
)
from signalos_core.plugins._package import (
    SIGNATURE_FILE,
    PackageLimits,
    PluginPackage,
    build_package,
    pack_plugin,
    read_package,
    sign_package,
    verify_package,
    verify_tree,
)
from signalos_core.plugins._registry import InstallRecord, PluginRegistry
from signalos_core.plugins._runtime import METHOD_CONTRACTS, PluginRuntime, call_plugin
from signalos_core.plugins._sandbox import PluginWorker, SandboxPolicy, sandbox_capabilities
from signalos_core.plugins._scaffold import scaffold_plugin
from signalos_core.plugins._trust import Keyring, PublisherKey, SigningKey, key_id_for

__all__ = [
    "MANIFEST_FILE",
    "METHOD_CONTRACTS",
    "RESERVED_PUBLISHERS",
    "SIGNATURE_FILE",
    "AccountState",
    "ConnectionDiagnosis",
    "ConnectionStatus",
    "FetchSignalsRequest",
    "FetchSignalsResult",
    "HostRange",
    "InstallRecord",
    "Keyring",
    "Manifest",
    "ManifestError",
    "OrderRequest",
    "OrderResult",
    "PackageLimits",
    "PackageVerificationError",
    "ParseRequest",
    "ParseResult",
    "Permissions",
    "PluginError",
    "PluginKind",
    "PluginPackage",
    "PluginRegistry",
    "PluginRuntime",
    "PluginStateError",
    "PluginWorker",
    "ProviderSignal",
    "PublisherKey",
    "SandboxError",
    "SandboxPolicy",
    "SigningKey",
    "StrategyDecision",
    "StrategyOutcome",
    "StrategyRequest",
    "TradeIntent",
    "build_package",
    "call_plugin",
    "host_compatible",
    "key_id_for",
    "manifest_schema",
    "pack_plugin",
    "parse_manifest",
    "parse_version",
    "read_package",
    "sandbox_capabilities",
    "scaffold_plugin",
    "sign_package",
    "verify_package",
    "verify_tree",
]
