"""Install registry and runtime: states, anti-rollback, ids, update with rollback, quarantine, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signalos_core.plugins import (
    Keyring,
    PackageVerificationError,
    ParseRequest,
    PluginRegistry,
    PluginRuntime,
    PluginStateError,
    SandboxError,
    SandboxPolicy,
    SigningKey,
    build_package,
)
from tests.core.plugins.conftest import NORMAL_PARSE, PluginFactory

U, A = "user-1", "acct-1"
PID = "acme.demo"
OK_PLUGIN = NORMAL_PARSE + "\ndef attack(self, request):\n    return None\n"
FAST = {"cpu_seconds": 20, "memory_mb": 256, "timeout_ms": 2000}


@pytest.fixture
def package(make_plugin: PluginFactory, key: SigningKey):  # type: ignore[no-untyped-def]
    """``package(version, code=OK_PLUGIN, **manifest)`` -> signed package bytes."""

    def build(version: str = "1.0.0", code: str = OK_PLUGIN, **overrides: object) -> bytes:
        overrides.setdefault("permissions", FAST)
        return build_package(make_plugin(code, version=version, **overrides), key)

    return build


@pytest.fixture
def runtime(registry: PluginRegistry, policy: SandboxPolicy):  # type: ignore[no-untyped-def]
    with PluginRuntime(registry, policy=policy, crash_limit=3) as rt:
        yield rt


def _reason(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(PackageVerificationError) as caught:
        call(*args, **kwargs)
    return caught.value.reason


def test_install_verifies_and_stores(registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    record = registry.install(package(), user_id=U, account_id=A)
    assert (record.state, record.version, record.crash_count) == ("verified", "1.0.0", 0)
    assert (registry.package_dir(PID, "1.0.0") / "plugin.py").is_file()
    assert [event for _, event, _ in registry.events(U, A, PID)] == ["installed", "verified"]
    assert registry.manifest(PID, "1.0.0").id == PID
    with pytest.raises(PluginStateError, match="already installed"):
        registry.install(package(), user_id=U, account_id=A)
    # Same bytes for a second account reuse the stored files.
    assert registry.install(package(), user_id=U, account_id="acct-2").state == "verified"
    assert [r.account_id for r in registry.list(U)] == [A, "acct-2"]
    assert registry.list(U, "acct-2")[0].plugin_id == PID
    with pytest.raises(PluginStateError) as caught:
        registry.get(U, "acct-3", PID)
    assert caught.value.state is None


def test_anti_rollback_unless_pinned(registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    registry.store(package("2.0.0"))
    assert registry.highest_seen(PID) == "2.0.0"
    assert _reason(registry.install, package("1.5.0"), user_id=U, account_id=A) == "rollback"
    record = registry.install(package("1.5.0"), user_id=U, account_id=A, pin=True)
    assert record.pinned
    assert registry.highest_seen(PID) == "2.0.0"


def test_id_ownership_reserved_ids_host_range_and_conflicts(
    tmp_path: Path,
    keyring: Keyring,
    other_key: SigningKey,
    make_plugin: PluginFactory,
    package,  # type: ignore[no-untyped-def]
) -> None:
    registry = PluginRegistry(tmp_path / "r", keyring, reserved_ids=frozenset({"acme.builtin"}), host_version="0.1.0")
    registry.install(package(), user_id=U, account_id=A)
    # Same id from another publisher: the manifest must be in its own namespace, so forge a keyring binding.
    foreign_keyring = Keyring([*keyring])
    squatter = SigningKey.generate("acme")
    foreign_keyring.add(squatter.public())
    registry.keyring = foreign_keyring
    conflicting = build_package(make_plugin(OK_PLUGIN, version="1.0.0", description="different bytes"), squatter)
    assert _reason(registry.store, conflicting) == "version_conflict"
    registry.keyring = keyring
    assert _reason(registry.store, package(plugin_id="acme.builtin")) == "reserved_id"
    assert _reason(registry.store, package("1.1.0", host=">=2.0.0")) == "incompatible_host"
    # Another publisher's package can never claim acme.* (namespace), and its own id is its own.
    globex = build_package(make_plugin(OK_PLUGIN, plugin_id="globex.demo", permissions=FAST), other_key)
    assert registry.store(globex).manifest.publisher == "globex"
    registry.close()


def test_duplicate_id_from_another_publisher_is_refused(
    tmp_path: Path, keyring: Keyring, make_plugin: PluginFactory
) -> None:
    registry = PluginRegistry(tmp_path / "r", keyring)
    first = SigningKey.generate("initech")
    registry.keyring = Keyring([*keyring, first.public()])
    registry.store(build_package(make_plugin(OK_PLUGIN, plugin_id="initech.tool", permissions=FAST), first))
    # Simulate a stored row of another publisher for the same id (e.g. a marketplace transfer gone wrong).
    registry._db.execute("UPDATE packages SET publisher='someone-else' WHERE plugin_id='initech.tool'")
    newer = build_package(make_plugin(OK_PLUGIN, plugin_id="initech.tool", version="1.1.0", permissions=FAST), first)
    assert _reason(registry.store, newer) == "duplicate_id"
    registry.close()


def test_state_machine_refuses_illegal_moves(registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    registry.install(package(), user_id=U, account_id=A)
    with pytest.raises(PluginStateError, match="cannot go from verified to quarantined"):
        registry.transition(U, A, PID, "quarantined")
    with pytest.raises(ValueError, match="unknown state"):
        registry.transition(U, A, PID, "dancing")
    with pytest.raises(ValueError, match="names a folder"):
        registry.data_dir("../x", A, PID)


def test_activate_call_deactivate_remove(runtime: PluginRuntime, registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    registry.install(package(), user_id=U, account_id=A)
    with pytest.raises(PluginStateError, match="is verified"):
        runtime.parse(U, A, PID, ParseRequest(text="ok"))
    assert runtime.activate(U, A, PID).state == "active"
    result = runtime.parse(U, A, PID, ParseRequest(text="ok"))
    assert result is not None
    assert (result.symbol, result.side) == ("EURUSD", "buy")
    assert runtime.parse(U, A, PID, ParseRequest(text="other")) is None
    with pytest.raises(PluginStateError, match="is a parser plugin, not a provider"):
        runtime.test_connection(U, A, PID, {})
    with pytest.raises(PluginStateError, match="cannot be activated from active"):
        runtime.activate(U, A, PID)
    assert runtime.deactivate(U, A, PID).state == "inactive"
    assert runtime.activate(U, A, PID).state == "active"
    assert runtime.remove(U, A, PID).state == "removed"
    assert not registry.package_dir(PID, "1.0.0").exists()
    # Removed installs can be installed again.
    assert registry.install(package(), user_id=U, account_id=A).state == "verified"


def test_self_test_failure_blocks_activation(runtime: PluginRuntime, registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    registry.install(package(code=OK_PLUGIN + "\ndef self_test(self):\n    return 'broken'\n"), user_id=U, account_id=A)
    with pytest.raises(SandboxError) as caught:
        runtime.activate(U, A, PID)
    assert caught.value.reason == "self_test_failed"
    assert registry.get(U, A, PID).state == "verified"


def test_update_and_automatic_rollback(runtime: PluginRuntime, registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    registry.install(package("1.0.0"), user_id=U, account_id=A)
    runtime.activate(U, A, PID)
    updated = runtime.update(U, A, package("1.1.0"))
    assert (updated.state, updated.version, updated.previous_version) == ("active", "1.1.0", "1.0.0")
    assert runtime.parse(U, A, PID, ParseRequest(text="ok")) is not None
    with pytest.raises(PluginStateError, match="already installed"):
        runtime.update(U, A, package("1.1.0"))
    # 1.2.0 cannot even import: the update rolls back to 1.1.0, which keeps serving.
    with pytest.raises(SandboxError) as caught:
        runtime.update(U, A, package("1.2.0", code=OK_PLUGIN, entry_point="missing:Plugin"))
    assert caught.value.reason == "start_failed"
    record = registry.get(U, A, PID)
    assert (record.state, record.version) == ("active", "1.1.0")
    assert "rolled back" in record.reason
    assert runtime.parse(U, A, PID, ParseRequest(text="ok")) is not None
    # A failing self-test rolls back as well.
    with pytest.raises(SandboxError, match="self-test"):
        runtime.update(U, A, package("1.3.0", code=OK_PLUGIN + "\ndef self_test(self):\n    return False\n"))
    assert registry.get(U, A, PID).version == "1.1.0"
    # An update of an inactive (or never activated) install just swaps the version.
    runtime.deactivate(U, A, PID)
    assert runtime.update(U, A, package("1.4.0")).state == "inactive"
    registry.install(package("1.4.0"), user_id=U, account_id="acct-2")
    fresh = runtime.update(U, "acct-2", package("1.5.0"))
    assert (fresh.state, fresh.version, fresh.previous_version) == ("inactive", "1.5.0", "1.4.0")


def test_repeated_crashes_quarantine_the_install(runtime: PluginRuntime, registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    crasher = NORMAL_PARSE + "\ndef attack(self, request):\n    import os\n    os._exit(9)\n"
    registry.install(package(code=crasher), user_id=U, account_id=A)
    runtime.activate(U, A, PID)
    for _ in range(2):
        with pytest.raises(SandboxError, match="crashed"):
            runtime.parse(U, A, PID, ParseRequest(text="attack"))
        assert runtime.parse(U, A, PID, ParseRequest(text="ok")) is not None
    with pytest.raises(SandboxError):
        runtime.parse(U, A, PID, ParseRequest(text="attack"))
    record = registry.get(U, A, PID)
    assert record.state == "quarantined"
    assert record.crash_count == 3
    assert "quarantined after 3 failures" in record.reason
    with pytest.raises(PluginStateError, match="quarantined") as caught:
        runtime.parse(U, A, PID, ParseRequest(text="ok"))
    assert caught.value.state == "quarantined"
    with pytest.raises(PluginStateError, match="quarantined"):
        runtime.activate(U, A, PID)
    # A fixed version brings it back as inactive: the user re-activates deliberately.
    fixed = runtime.update(U, A, package("1.0.1"))
    assert (fixed.state, fixed.crash_count) == ("inactive", 0)


def test_bad_replies_count_as_failures(runtime: PluginRuntime, registry: PluginRegistry, package) -> None:  # type: ignore[no-untyped-def]
    liar = NORMAL_PARSE + "\ndef attack(self, request):\n    return {'symbol': 'EURUSD', 'entry': 1.5}\n"
    registry.install(package(code=liar), user_id=U, account_id=A)
    runtime.activate(U, A, PID)
    with pytest.raises(SandboxError, match="float") as caught:
        runtime.parse(U, A, PID, ParseRequest(text="attack"))
    assert caught.value.reason == "bad_reply"
    assert registry.get(U, A, PID).crash_count == 1


def test_revoked_key_or_modified_files_block_activation(
    runtime: PluginRuntime, registry: PluginRegistry, key: SigningKey, package
) -> None:  # type: ignore[no-untyped-def]
    registry.install(package(), user_id=U, account_id=A)
    registry.install(package(), user_id=U, account_id="acct-2")
    code = registry.package_dir(PID, "1.0.0") / "plugin.py"
    original = code.read_bytes()
    code.write_text("import os\n")
    with pytest.raises(PackageVerificationError) as caught:
        runtime.activate(U, A, PID)
    assert caught.value.reason == "modified_file"
    code.write_bytes(original)
    registry.keyring.revoke(key.key_id, "compromised")
    with pytest.raises(PackageVerificationError) as caught:
        runtime.activate(U, "acct-2", PID)
    assert caught.value.reason == "revoked_key"


def test_state_survives_a_host_restart(tmp_path: Path, keyring: Keyring, policy: SandboxPolicy, package) -> None:  # type: ignore[no-untyped-def]
    registry = PluginRegistry(tmp_path / "r", keyring)
    registry.install(package(permissions={**FAST, "files": "data"}), user_id=U, account_id=A)
    with PluginRuntime(registry, policy=policy) as runtime:
        runtime.activate(U, A, PID)
    registry.close()
    reopened = PluginRegistry(tmp_path / "r", keyring)
    assert reopened.get(U, A, PID).state == "active"
    with PluginRuntime(reopened, policy=policy) as runtime:  # starts the worker on first use
        assert runtime.parse(U, A, PID, ParseRequest(text="ok")) is not None
        assert runtime.call(U, A, PID, "ping", {"echo": 1}) == {"echo": 1}
    assert (tmp_path / "r" / "data" / U / A / PID).is_dir()
    events = [event for _, event, _ in reopened.events(U, A, PID)]
    assert events == ["installed", "verified", "active"]
    reopened.close()


def test_data_permission_gives_a_private_writable_folder(
    runtime: PluginRuntime, registry: PluginRegistry, package
) -> None:  # type: ignore[no-untyped-def]
    writer = (
        NORMAL_PARSE
        + """
def attack(self, request):
    import os
    path = os.path.join(os.environ["HOME"], "state.json")
    with open(path, "w") as handle:
        handle.write(request["text"])
    return {"symbol": "EURUSD", "note": open(path).read()}
"""
    )
    registry.install(package(code=writer, permissions={**FAST, "files": "data"}), user_id=U, account_id=A)
    runtime.activate(U, A, PID)
    result = runtime.parse(U, A, PID, ParseRequest(text="attack"))
    assert result is not None
    assert result.note == "attack"
    stored = registry.data_dir(U, A, PID) / "state.json"
    assert stored.read_text() == "attack"
    assert json.loads(registry.manifest(PID, "1.0.0").to_json())["permissions"]["files"] == "data"
