"""The public API of signalos_core.plugins is exactly this list (changing it is a deliberate act)."""

from __future__ import annotations

from signalos_core import plugins

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert plugins.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(plugins, name) is not None


def test_public_callables_are_documented() -> None:
    for name in EXPECTED:
        value = getattr(plugins, name)
        if callable(value):
            assert value.__doc__, name
