"""``signalos plugin``: the plugin author's tools (new, keygen, pack, sign, verify, run).

Every command prints one JSON document on stdout. Exit codes: 0 success, 1 unexpected failure, 2 bad input
(usage, invalid manifest, unreadable file or JSON), 4 package verification failed (``reason`` in the JSON),
5 the plugin failed or was contained by the sandbox (``reason`` in the JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

from signalos_core.plugins import (
    Keyring,
    ManifestError,
    PackageVerificationError,
    PluginError,
    PluginKind,
    PluginWorker,
    SandboxError,
    SandboxPolicy,
    SigningKey,
    call_plugin,
    pack_plugin,
    parse_manifest,
    scaffold_plugin,
    sign_package,
    verify_package,
)

EXIT_BAD_INPUT = 2
EXIT_VERIFICATION = 4
EXIT_SANDBOX = 5


def _emit(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def _fail(error: Exception, code: int, **extra: Any) -> NoReturn:
    document: dict[str, Any] = {"ok": False, "error": str(error), **extra}
    for attribute in ("reason", "issues", "plugin_id"):
        value = getattr(error, attribute, None)
        if value:
            document[attribute] = value
    _emit(document)
    sys.exit(code)


def _load_keyring(path: str) -> Keyring:
    try:
        return Keyring.load(path)
    except PluginError as exc:
        _fail(exc, EXIT_BAD_INPUT)


@click.group("plugin")
def plugin() -> None:
    """Create, pack, sign, verify and run SignalOS plugins (see docs/plugins.md)."""


@plugin.command("new")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "plugin_id", required=True, help="Plugin id, '<publisher>.<name>', e.g. acme.gold-format.")
@click.option("--kind", type=click.Choice([kind.value for kind in PluginKind]), required=True, help="Plugin kind.")
@click.option("--name", default=None, help="Display name (default: from the id).")
def new(folder: Path, plugin_id: str, kind: str, name: str | None) -> None:
    """Scaffold FOLDER with plugin.json and a working plugin.py for KIND."""
    try:
        root = scaffold_plugin(folder, plugin_id=plugin_id, kind=kind, name=name)
    except PluginError as exc:  # ManifestError included: a bad id
        _fail(exc, EXIT_BAD_INPUT)
    _emit({"ok": True, "folder": str(root), "files": sorted(path.name for path in root.iterdir())})


@plugin.command("keygen")
@click.option("--publisher", required=True, help="Publisher namespace the key signs for.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PRIVATE key (mode 0600). Never ship it.",
)
@click.option(
    "--keyring",
    "keyring_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also trust the public key in this keyring file (created if missing).",
)
def keygen(publisher: str, out: Path, keyring_path: Path | None) -> None:
    """Create an Ed25519 signing key for PUBLISHER."""
    if out.exists():
        _fail(FileExistsError(f"{out} exists; refusing to overwrite a key"), EXIT_BAD_INPUT)
    key = SigningKey.generate(publisher)
    key.save(out)
    if keyring_path is not None:
        keyring = Keyring.load(keyring_path) if keyring_path.exists() else Keyring()
        keyring.add(key.public())
        keyring.save(keyring_path)
    _emit({"ok": True, "key_file": str(out), **key.public().to_dict()})


@plugin.command("pack")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Archive to write (default: <id>-<version>.zip in the current folder).",
)
def pack(folder: Path, output: Path | None) -> None:
    """Pack FOLDER into an unsigned .zip package (validates the manifest)."""
    try:
        manifest = parse_manifest((folder / "plugin.json").read_bytes())
        data = pack_plugin(folder)
    except OSError as exc:
        _fail(exc, EXIT_BAD_INPUT)
    except ManifestError as exc:
        _fail(exc, EXIT_BAD_INPUT)
    except PackageVerificationError as exc:
        _fail(exc, EXIT_VERIFICATION)
    target = output or Path(f"{manifest.id}-{manifest.version}.zip")
    target.write_bytes(data)
    _emit(
        {"ok": True, "package": str(target), "plugin_id": manifest.id, "version": manifest.version, "bytes": len(data)}
    )


@plugin.command("sign")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Private key file from 'signalos plugin keygen'.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Signed archive to write (default: overwrite PACKAGE).",
)
def sign(package: Path, key_path: str, output: Path | None) -> None:
    """Sign PACKAGE: add SIGNATURE.json (sha256 of every file, Ed25519 signature)."""
    try:
        key = SigningKey.load(key_path)
        signed = sign_package(package.read_bytes(), key)
    except PackageVerificationError as exc:
        _fail(exc, EXIT_VERIFICATION)
    except PluginError as exc:
        _fail(exc, EXIT_BAD_INPUT)
    target = output or package
    target.write_bytes(signed)
    _emit({"ok": True, "package": str(target), "key_id": key.key_id, "publisher": key.publisher})


@plugin.command("verify")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--keyring",
    "keyring_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Keyring JSON with the trusted publisher keys.",
)
def verify(package: Path, keyring_path: str) -> None:
    """Verify PACKAGE's signature and file list against a keyring (exit 4 with a reason if it fails)."""
    keyring = _load_keyring(keyring_path)
    try:
        verified = verify_package(package.read_bytes(), keyring)
    except PackageVerificationError as exc:
        _fail(exc, EXIT_VERIFICATION)
    manifest = verified.manifest
    _emit(
        {
            "ok": True,
            "plugin_id": manifest.id,
            "version": manifest.version,
            "publisher": manifest.publisher,
            "kind": str(manifest.kind),
            "key_id": verified.key_id,
            "sha256": verified.digest,
            "permissions": msgspec.to_builtins(manifest.permissions),
        }
    )


@plugin.command("run")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.argument("method")
@click.option("--input", "input_json", default=None, help="JSON input of the call (default: read stdin).")
@click.option(
    "--keyring",
    "keyring_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Required when TARGET is a package: it is verified before it runs.",
)
@click.option("--timeout-ms", type=click.IntRange(10, 60_000), default=None, help="Override the call deadline.")
def run(target: Path, method: str, input_json: str | None, keyring_path: str | None, timeout_ms: int | None) -> None:
    """Call METHOD of the plugin at TARGET (a folder, or a signed package) in the sandbox with JSON input.

    Example: signalos plugin run ./my-plugin parse --input '{"text": "BUY EURUSD"}'
    """
    import tempfile

    try:
        payload = json.loads(input_json if input_json is not None else sys.stdin.read())
    except ValueError as exc:
        _fail(exc, EXIT_BAD_INPUT)
    with tempfile.TemporaryDirectory(prefix="signalos-plugin-run-") as scratch:
        folder = target
        if target.is_file():
            if keyring_path is None:
                _fail(ValueError("running a package needs --keyring to verify it first"), EXIT_BAD_INPUT)
            try:
                folder = verify_package(target.read_bytes(), _load_keyring(keyring_path)).extract(
                    Path(scratch) / "plugin"
                )
            except PackageVerificationError as exc:
                _fail(exc, EXIT_VERIFICATION)
        try:
            manifest = parse_manifest((folder / "plugin.json").read_bytes())
        except (OSError, ManifestError) as exc:
            _fail(exc, EXIT_BAD_INPUT)
        data_dir = Path(scratch) / "data"
        data_dir.mkdir()
        with PluginWorker(folder, manifest, data_dir=data_dir, policy=SandboxPolicy()) as worker:
            if timeout_ms is not None:
                worker.timeout_s = timeout_ms / 1000.0
            try:
                result = call_plugin(worker, method, payload)
            except SandboxError as exc:
                code = EXIT_BAD_INPUT if exc.reason == "bad_request" else EXIT_SANDBOX
                _fail(exc, code, output=worker.stderr_tail()[-2000:])
            _emit(
                {
                    "ok": True,
                    "plugin_id": manifest.id,
                    "method": method,
                    "result": msgspec.to_builtins(result),
                    "sandbox": worker.applied,
                }
            )
