"""Fixtures for the plugin tests: keys, a keyring, plugin folders written on the fly, fast sandbox limits."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signalos_core.plugins import Keyring, PluginRegistry, SandboxPolicy, SigningKey

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "plugins"

PluginFactory = Callable[..., Path]


def manifest_dict(plugin_id: str = "acme.demo", **overrides: Any) -> dict[str, Any]:
    """A valid manifest as a dict, with top-level overrides."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "id": plugin_id,
        "name": "Demo",
        "version": "1.0.0",
        "publisher": plugin_id.split(".", maxsplit=1)[0],
        "kind": "parser",
        "entry_point": "plugin:Plugin",
        "host": ">=0.1.0, <1.0.0",
        "permissions": {"network": [], "files": "none", "cpu_seconds": 20, "memory_mb": 256, "timeout_ms": 3000},
        "description": "A test plugin.",
    }
    body.update(overrides)
    return body


#: A parser whose parse() answers "ok" normally (used to prove the host keeps serving after an attack).
NORMAL_PARSE = """
def parse(self, request):
    if request["text"] == "ok":
        return {"symbol": "EURUSD", "side": "buy"}
    return self.attack(request)
"""


@pytest.fixture
def make_plugin(tmp_path: Path) -> PluginFactory:
    """Write a plugin folder: ``make_plugin(code, name=..., **manifest_overrides)``; returns its path."""
    counter = iter(range(1_000_000))

    def factory(code: str, *, folder: str | None = None, module_prelude: str = "", **overrides: Any) -> Path:
        root = tmp_path / (folder or f"plugin{next(counter)}")
        root.mkdir(parents=True)
        (root / "plugin.json").write_text(json.dumps(manifest_dict(**overrides)), "utf-8")
        source = (
            textwrap.dedent(module_prelude) + "\n\nclass Plugin:\n" + textwrap.indent(textwrap.dedent(code), "    ")
        )
        (root / "plugin.py").write_text(source, "utf-8")
        return root

    return factory


@pytest.fixture(scope="session")
def key() -> SigningKey:
    return SigningKey.generate("acme")


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    return SigningKey.generate("globex")


@pytest.fixture
def keyring(key: SigningKey, other_key: SigningKey) -> Keyring:
    return Keyring([key.public(), other_key.public()])


@pytest.fixture
def policy() -> SandboxPolicy:
    """The production defaults, with bubblewrap off (its own tests turn it on) and a short start-up wait."""
    return SandboxPolicy(use_bwrap=False, startup_timeout_s=20.0)


@pytest.fixture
def registry(tmp_path: Path, keyring: Keyring) -> Iterator[PluginRegistry]:
    reg = PluginRegistry(tmp_path / "registry", keyring)
    yield reg
    reg.close()
