"""``signalos plugin new``: write a minimal, working plugin folder for each kind."""

from __future__ import annotations

import os
from pathlib import Path

from signalos_core._errors import PluginError
from signalos_core._version import __version__
from signalos_core.plugins._contracts import PluginKind
from signalos_core.plugins._manifest import MANIFEST_FILE, parse_manifest

__all__ = ["scaffold_plugin"]

_CODE = {
    PluginKind.PARSER: '''"""{name}: a channel-format parser plugin."""

import re

_PATTERN = re.compile(r"^(?P<side>BUY|SELL) (?P<symbol>[A-Z]{{6}})(?: SL (?P<sl>[0-9.]+))?$")


class Plugin:
    def parse(self, request):
        """Return a parse result dict, or None when the message is not in this format."""
        match = _PATTERN.match(request["text"].strip().upper())
        if match is None:
            return None
        result = {{"symbol": match["symbol"], "side": match["side"].lower()}}
        if match["sl"]:
            result["stop_loss"] = match["sl"]  # prices as strings: the host reads them as Decimal
        return result

    def self_test(self):
        return self.parse({{"text": "BUY EURUSD SL 1.0500"}}) is not None
''',
    PluginKind.STRATEGY: '''"""{name}: a strategy plugin (accept, veto or adjust size and stops)."""


class Plugin:
    def adjust(self, request):
        intent = request["intent"]
        if intent.get("stop_loss") is None:
            return {{"decision": "veto", "reason": "no stop loss"}}
        return {{"decision": "accept"}}

    def self_test(self):
        return True
''',
    PluginKind.PROVIDER: '''"""{name}: a provider plugin (signal source or broker connection)."""


class Plugin:
    def test_connection(self, config):
        if not config.get("api_key"):
            return {{"status": "bad_credentials", "hint": "set api_key"}}
        return {{"status": "ok", "latency_ms": 0.0}}

    def fetch_signals(self, request):
        return {{"signals": [], "cursor": request.get("cursor", "")}}

    def submit_order(self, order):
        return {{"status": "rejected", "client_order_id": order["client_order_id"], "reason": "not implemented"}}

    def self_test(self):
        return True
''',
}


def scaffold_plugin(
    folder: str | os.PathLike[str], *, plugin_id: str, kind: PluginKind | str, name: str | None = None
) -> Path:
    """Create ``folder`` with ``plugin.json`` and ``plugin.py`` for a plugin of ``kind``; returns the folder."""
    kind = PluginKind(kind)
    root = Path(folder)
    if root.exists() and any(root.iterdir()):
        raise PluginError(f"{root} exists and is not empty", plugin_id=plugin_id)
    publisher = plugin_id.split(".", maxsplit=1)[0]
    major, minor = __version__.split(".")[:2]
    display = name or plugin_id.split(".", 1)[-1].replace("-", " ").title()
    manifest = parse_manifest(
        {
            "schema_version": 1,
            "id": plugin_id,
            "name": display,
            "version": "0.1.0",
            "publisher": publisher,
            "kind": str(kind),
            "entry_point": "plugin:Plugin",
            "host": f">={major}.{minor}.0, <{int(major) + 1}.0.0",
            "permissions": {"network": [], "files": "none", "cpu_seconds": 30, "memory_mb": 256, "timeout_ms": 2000},
            "description": f"{display} ({kind} plugin).",
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_FILE).write_bytes(manifest.to_json())
    (root / "plugin.py").write_text(_CODE[kind].format(name=display), "utf-8")
    return root
