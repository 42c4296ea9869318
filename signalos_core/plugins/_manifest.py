"""The plugin manifest (``plugin.json``): JSON Schema validation, typed view, semver and host ranges.

Validation reports every problem at once, each prefixed with its JSON path (``$.permissions.memory_mb: ...``),
so an author fixes a manifest in one round. Versions follow semver 2.0.0 (parsed and ordered by the ``semver``
library); the host range is a comma-separated list of comparisons (``>=0.1.0, <1.0.0``), each evaluated by
``semver.Version.match``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping
from typing import Any, Literal

import jsonschema
import msgspec
import semver

from signalos_core._errors import ManifestError
from signalos_core.plugins._contracts import PluginKind

__all__ = [
    "MANIFEST_FILE",
    "RESERVED_PUBLISHERS",
    "HostRange",
    "Manifest",
    "Permissions",
    "host_compatible",
    "manifest_schema",
    "parse_manifest",
    "parse_version",
]

MANIFEST_FILE = "plugin.json"
#: Publisher namespaces no third-party plugin may use: core ids can never be shadowed (the opposite of Home
#: Assistant's "custom integration overrides core" behaviour).
RESERVED_PUBLISHERS = frozenset({"signalos", "core", "builtin", "system"})
_MAX_MANIFEST_BYTES = 64 * 1024
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">")


class Permissions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """What a plugin may use. Everything not declared is denied by the sandbox."""

    #: ``host:port`` pairs. Empty means no socket at all (seccomp); otherwise TCP connect is limited to the
    #: declared ports (Landlock ABI >= 4). Host names are declared for consent and audit, not enforced.
    network: tuple[str, ...] = ()
    #: ``none``: read-only access to its own code only; ``data``: plus a private read-write folder.
    files: Literal["none", "data"] = "none"
    cpu_seconds: int = 30
    memory_mb: int = 256
    timeout_ms: int = 2000
    max_message_kb: int = 1024

    @property
    def network_ports(self) -> tuple[int, ...]:
        """The distinct TCP ports of :attr:`network`, sorted."""
        return tuple(sorted({int(entry.rpartition(":")[2]) for entry in self.network}))


class Manifest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True):
    """A validated ``plugin.json``."""

    schema_version: int
    id: str
    name: str
    version: str
    publisher: str
    kind: PluginKind
    entry_point: str
    host: str
    permissions: Permissions
    description: str
    homepage: str = ""

    @property
    def semver(self) -> semver.Version:
        """The version as a comparable :class:`semver.Version`."""
        return parse_version(self.version)

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys) of this manifest."""
        return json.dumps(msgspec.to_builtins(self), sort_keys=True, indent=2).encode() + b"\n"


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every manifest must satisfy, as shipped in the package."""
    text = importlib.resources.files("signalos_core.plugins").joinpath("manifest.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def parse_version(text: str) -> semver.Version:
    """Parse a semver 2.0.0 version; raises :class:`ManifestError` naming the bad value."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{text!r} is not a semantic version (x.y.z)", issues=[f"$.version: {exc}"]) from exc


class HostRange:
    """A host compatibility range such as ``>=0.1.0, <1.0.0`` (every comparison must hold)."""

    def __init__(self, text: str) -> None:
        clauses = [clause.strip() for clause in text.split(",")]
        if not clauses or any(not clause for clause in clauses):
            raise ValueError(f"empty comparison in host range {text!r}")
        for clause in clauses:
            operator = next((op for op in _OPERATORS if clause.startswith(op)), None)
            if operator is None:
                raise ValueError(f"{clause!r} must start with one of {', '.join(_OPERATORS)}")
            semver.Version.parse(clause[len(operator) :].strip())
        self.text = text
        self._clauses = [clause.replace(" ", "") for clause in clauses]

    def contains(self, version: str | semver.Version) -> bool:
        """True when ``version`` satisfies every comparison (pre-releases compare by semver precedence)."""
        parsed = version if isinstance(version, semver.Version) else semver.Version.parse(version)
        return all(parsed.match(clause) for clause in self._clauses)

    def __repr__(self) -> str:
        return f"HostRange({self.text!r})"


def host_compatible(manifest: Manifest, host_version: str) -> bool:
    """True when ``host_version`` lies inside the manifest's ``host`` range."""
    return HostRange(manifest.host).contains(host_version)


def parse_manifest(data: bytes | str | Mapping[str, Any]) -> Manifest:
    """Validate a manifest (JSON text or an already-decoded mapping) and return its typed view.

    Raises :class:`ManifestError` whose ``issues`` lists every problem, each starting with its JSON path.
    """
    document = _decode(data)
    validator = jsonschema.Draft202012Validator(manifest_schema())
    issues = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]
    if isinstance(document, dict):
        issues.extend(_semantic_issues(document))
    plugin_id = document.get("id") if isinstance(document, dict) and isinstance(document.get("id"), str) else None
    if issues:
        summary = "; ".join(sorted(issues))
        raise ManifestError(f"invalid plugin manifest: {summary}", issues=sorted(issues), plugin_id=plugin_id)
    return msgspec.convert(document, Manifest)


def _decode(data: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(data, Mapping):
        return dict(data)
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is larger than {_MAX_MANIFEST_BYTES} bytes", issues=["$: too large"])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}", issues=[f"$: not JSON ({exc})"]) from exc


def _semantic_issues(document: dict[str, Any]) -> list[str]:
    """Checks JSON Schema cannot express: id namespace, reserved publishers, host range syntax."""
    issues: list[str] = []
    plugin_id, publisher = document.get("id"), document.get("publisher")
    if isinstance(plugin_id, str) and isinstance(publisher, str) and plugin_id.split(".")[0] != publisher:
        issues.append(f"$.id: must start with the publisher namespace '{publisher}.'")
    if isinstance(publisher, str) and publisher in RESERVED_PUBLISHERS:
        issues.append(f"$.publisher: '{publisher}' is reserved for SignalOS core plugins")
    host = document.get("host")
    if isinstance(host, str) and host.strip():
        try:
            HostRange(host)
        except ValueError as exc:
            issues.append(f"$.host: {exc}")
    return issues
