"""Plugin packages: a zip archive holding ``plugin.json``, the code, and ``SIGNATURE.json``.

``SIGNATURE.json`` is the signed file list (Grafana's model): the SHA-256 of every other file in the archive,
the plugin id, version and publisher, the key id, and an Ed25519 signature over the canonical JSON of all that.
Verification refuses a missing or bad signature, an untrusted, revoked or foreign key, and any modified,
missing or extra file. Reading never executes anything and never fetches anything: the archive is parsed in
memory with caps on entry count and sizes, and unsafe entries (absolute paths, ``..``, backslashes, symlinks,
device files, encrypted entries) are refused before any byte is written to disk. Files that would run code on
install or on interpreter start-up (``setup.py``, ``*.pth``, ``sitecustomize.py``), compiled bytecode and
native libraries are refused: a package is reviewable source only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

import attrs

from signalos_core._errors import ManifestError, PackageVerificationError
from signalos_core.plugins._manifest import MANIFEST_FILE, RESERVED_PUBLISHERS, Manifest, parse_manifest
from signalos_core.plugins._trust import Keyring, SigningKey

__all__ = [
    "SIGNATURE_FILE",
    "PackageLimits",
    "PluginPackage",
    "build_package",
    "pack_plugin",
    "read_package",
    "sign_package",
    "verify_package",
    "verify_tree",
]

SIGNATURE_FILE = "SIGNATURE.json"
_DOMAIN = b"signalos-plugin-signature-v1\n"
_FORBIDDEN_NAMES = frozenset({"setup.py", "setup.cfg", "sitecustomize.py", "usercustomize.py"})
_FORBIDDEN_SUFFIXES = (".pth", ".pyc", ".pyo", ".so", ".dll", ".dylib", ".exe", ".whl", ".egg")
_SKIPPED_WHEN_PACKING = frozenset({"__pycache__", ".git", ".hg", ".svn", ".DS_Store", ".mypy_cache", ".ruff_cache"})
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@attrs.frozen
class PackageLimits:
    """Caps applied while reading an archive (a zip bomb or a million tiny files is refused early)."""

    max_package_bytes: int = 16 * 1024 * 1024
    max_files: int = 500
    max_file_bytes: int = 4 * 1024 * 1024
    max_total_bytes: int = 32 * 1024 * 1024


@attrs.frozen
class PluginPackage:
    """The parsed content of a package. ``verified`` is True only when returned by :func:`verify_package`."""

    manifest: Manifest
    files: dict[str, bytes] = attrs.field(repr=False)
    digest: str
    signature: dict[str, Any] | None = attrs.field(repr=False)
    verified: bool = False

    @property
    def key_id(self) -> str | None:
        """Key id named by the signature, if any."""
        return None if self.signature is None else str(self.signature.get("key_id"))

    def file_hashes(self) -> dict[str, str]:
        """SHA-256 of every file except the signature, by path."""
        return {name: _sha256(body) for name, body in sorted(self.files.items())}

    def extract(self, destination: str | os.PathLike[str]) -> Path:
        """Write the files (signature included) under ``destination``, which must not exist yet."""
        root = Path(destination)
        root.mkdir(parents=True, exist_ok=False)
        for name, body in sorted(self.files.items()):
            target = root.joinpath(*name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        if self.signature is not None:
            (root / SIGNATURE_FILE).write_text(json.dumps(self.signature, indent=2, sort_keys=True), "utf-8")
        return root


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fail(message: str, reason: str, plugin_id: str | None = None) -> PackageVerificationError:
    return PackageVerificationError(message, reason=reason, plugin_id=plugin_id)


def _check_name(name: str) -> None:
    """Refuse any path that could land outside the extraction folder or run code at install/start-up."""
    parts = name.split("/")
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in parts)
        or posixpath.normpath(name) != name
        or len(name) > 255
    ):
        raise _fail(f"unsafe path in archive: {name!r}", "unsafe_path")
    base = parts[-1]
    if base in _FORBIDDEN_NAMES or base.lower().endswith(_FORBIDDEN_SUFFIXES) or "__pycache__" in parts:
        raise _fail(f"file type not allowed in a plugin package: {name!r}", "forbidden_file")


def _read_archive(data: bytes, limits: PackageLimits) -> dict[str, bytes]:
    if len(data) > limits.max_package_bytes:
        raise _fail(f"package is {len(data)} bytes, over the {limits.max_package_bytes} limit", "too_large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise _fail(f"not a zip archive: {exc}", "malformed_archive") from exc
    files: dict[str, bytes] = {}
    total = 0
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_files:
            raise _fail(f"archive has {len(entries)} entries, over the {limits.max_files} limit", "too_large")
        for info in entries:
            mode = info.external_attr >> 16
            if not info.filename:
                raise _fail("archive entry without a name", "unsafe_path")
            if info.is_dir():
                continue
            _check_name(info.filename)
            # Only unix entries carry a file type; permission bits alone (Python's writestr) mean a plain file.
            if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                kind = "symlink" if stat.S_ISLNK(mode) else "special file"
                raise _fail(f"{kind} in archive: {info.filename!r}", "unsafe_path")
            if info.flag_bits & 0x1:
                raise _fail(f"encrypted entry: {info.filename!r}", "malformed_archive")
            if info.filename in files:
                raise _fail(f"duplicate entry: {info.filename!r}", "malformed_archive")
            if info.file_size > limits.max_file_bytes:
                raise _fail(f"{info.filename!r} is over the {limits.max_file_bytes}-byte file limit", "too_large")
            try:
                with archive.open(info) as handle:
                    # Read one byte past the cap: the header's size may lie (zip bomb).
                    body = handle.read(limits.max_file_bytes + 1)
            # zlib.error: corrupt deflate data; NotImplementedError: an unsupported compression method.
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as exc:
                raise _fail(f"cannot read {info.filename!r}: {exc}", "malformed_archive") from exc
            if len(body) > limits.max_file_bytes:
                raise _fail(f"{info.filename!r} is over the {limits.max_file_bytes}-byte file limit", "too_large")
            total += len(body)
            if total > limits.max_total_bytes:
                raise _fail(f"archive expands past {limits.max_total_bytes} bytes", "too_large")
            files[info.filename] = body
    return files


def _write_archive(files: dict[str, bytes]) -> bytes:
    """A deterministic zip: sorted entries, fixed timestamps and modes (same input, same digest)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _manifest_of(files: dict[str, bytes]) -> Manifest:
    body = files.get(MANIFEST_FILE)
    if body is None:
        raise _fail(f"package has no {MANIFEST_FILE}", "bad_manifest")
    try:
        return parse_manifest(body)
    except ManifestError as exc:
        reason = "reserved_id" if any("reserved" in issue for issue in exc.issues) else "bad_manifest"
        raise PackageVerificationError(str(exc), reason=reason, plugin_id=exc.plugin_id) from exc


def pack_plugin(folder: str | os.PathLike[str]) -> bytes:
    """Zip a plugin folder (unsigned). Validates the manifest; refuses symlinks and forbidden files."""
    root = Path(folder)
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_WHEN_PACKING for part in relative.parts) or relative.name == SIGNATURE_FILE:
            continue
        if path.is_symlink():
            raise _fail(f"symlink in plugin folder: {relative}", "unsafe_path")
        if path.is_dir():
            continue
        name = relative.as_posix()
        _check_name(name)
        files[name] = path.read_bytes()
    _manifest_of(files)
    return _write_archive(files)


def _signed_payload(signature: dict[str, Any]) -> bytes:
    body = {key: value for key, value in signature.items() if key != "signature"}
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_package(data: bytes, key: SigningKey, *, limits: PackageLimits | None = None) -> bytes:
    """Return ``data`` re-packed with a ``SIGNATURE.json`` signed by ``key`` (an old signature is replaced)."""
    files = _read_archive(data, limits or PackageLimits())
    files.pop(SIGNATURE_FILE, None)
    manifest = _manifest_of(files)
    if manifest.publisher != key.publisher:
        raise _fail(
            f"key of publisher {key.publisher!r} cannot sign a plugin of {manifest.publisher!r}",
            "publisher_mismatch",
            manifest.id,
        )
    signature: dict[str, Any] = {
        "format": 1,
        "plugin_id": manifest.id,
        "version": manifest.version,
        "publisher": manifest.publisher,
        "key_id": key.key_id,
        "algorithm": "ed25519",
        "files": {name: _sha256(body) for name, body in sorted(files.items())},
    }
    signature["signature"] = key.sign(_signed_payload(signature)).hex()
    files[SIGNATURE_FILE] = json.dumps(signature, indent=2, sort_keys=True).encode()
    return _write_archive(files)


def build_package(folder: str | os.PathLike[str], key: SigningKey) -> bytes:
    """Pack and sign a plugin folder in one step."""
    return sign_package(pack_plugin(folder), key)


def read_package(data: bytes, *, limits: PackageLimits | None = None) -> PluginPackage:
    """Parse a package safely WITHOUT checking its signature (for display or before :func:`verify_package`)."""
    files = _read_archive(data, limits or PackageLimits())
    raw_signature = files.pop(SIGNATURE_FILE, None)
    manifest = _manifest_of(files)
    signature: dict[str, Any] | None = None
    if raw_signature is not None:
        try:
            loaded = json.loads(raw_signature)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _fail(f"{SIGNATURE_FILE} is not JSON: {exc}", "bad_signature", manifest.id) from exc
        if not isinstance(loaded, dict):
            raise _fail(f"{SIGNATURE_FILE} must be an object", "bad_signature", manifest.id)
        signature = loaded
    return PluginPackage(manifest=manifest, files=files, digest=_sha256(data), signature=signature)


def _check_signature(
    manifest: Manifest, signature: dict[str, Any] | None, hashes: dict[str, str], keyring: Keyring
) -> None:
    plugin_id = manifest.id
    if signature is None:
        raise _fail(f"package {plugin_id} is not signed", "missing_signature", plugin_id)
    key_id, signed_files = signature.get("key_id"), signature.get("files")
    if not isinstance(key_id, str) or not isinstance(signed_files, dict):
        raise _fail(f"{SIGNATURE_FILE} of {plugin_id} lacks key_id or files", "bad_signature", plugin_id)
    key = keyring.require(key_id, manifest.publisher, plugin_id=plugin_id)
    try:
        raw = bytes.fromhex(str(signature.get("signature", "")))
    except ValueError:
        raw = b""
    if signature.get("algorithm") != "ed25519" or not key.verify(raw, _signed_payload(signature)):
        raise _fail(f"signature of {plugin_id} does not verify with key {key_id}", "bad_signature", plugin_id)
    claimed = (signature.get("plugin_id"), signature.get("version"), signature.get("publisher"))
    if claimed != (manifest.id, manifest.version, manifest.publisher):
        raise _fail(
            f"signature is for {claimed}, manifest says {plugin_id} {manifest.version}", "id_mismatch", plugin_id
        )
    for name in sorted(set(signed_files) - set(hashes)):
        raise _fail(f"signed file {name!r} is missing from {plugin_id}", "missing_file", plugin_id)
    for name in sorted(set(hashes) - set(signed_files)):
        raise _fail(f"file {name!r} of {plugin_id} is not in the signed file list", "extra_file", plugin_id)
    for name, digest in sorted(hashes.items()):
        if signed_files[name] != digest:
            raise _fail(f"file {name!r} of {plugin_id} was modified after signing", "modified_file", plugin_id)


def verify_package(data: bytes, keyring: Keyring, *, limits: PackageLimits | None = None) -> PluginPackage:
    """Verify a package from its bytes and return it marked ``verified``.

    Raises :class:`PackageVerificationError` with a stable ``reason``: ``too_large``, ``malformed_archive``,
    ``unsafe_path``, ``forbidden_file``, ``bad_manifest``, ``reserved_id``, ``missing_signature``,
    ``bad_signature``, ``unknown_key``, ``publisher_mismatch``, ``revoked_key``, ``id_mismatch``,
    ``missing_file``, ``extra_file``, ``modified_file``.
    """
    package = read_package(data, limits=limits)
    if package.manifest.publisher in RESERVED_PUBLISHERS:  # pragma: no cover - refused by the manifest already
        raise _fail("reserved publisher", "reserved_id", package.manifest.id)
    _check_signature(package.manifest, package.signature, package.file_hashes(), keyring)
    return attrs.evolve(package, verified=True)


def verify_tree(folder: str | os.PathLike[str], keyring: Keyring) -> Manifest:
    """Re-verify an extracted plugin folder on disk (run before every activation: files may have changed)."""
    root = Path(folder)
    hashes: dict[str, str] = {}
    signature: dict[str, Any] | None = None
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise _fail(f"unexpected non-regular file {relative!r} in {root}", "unsafe_path")
        if path.is_dir():
            if path.name == "__pycache__":
                raise _fail(f"unexpected bytecode folder {relative!r} in {root}", "extra_file")
            continue
        if relative == SIGNATURE_FILE:
            signature = json.loads(path.read_text("utf-8"))
            continue
        hashes[relative] = _sha256(path.read_bytes())
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise _fail(f"{root} has no {MANIFEST_FILE}", "missing_file")
    manifest = _manifest_of({MANIFEST_FILE: manifest_path.read_bytes()})
    _check_signature(manifest, signature, hashes, keyring)
    return manifest
