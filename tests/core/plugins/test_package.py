"""Packing, signing and verifying packages; the keyring; every refusal reason."""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.plugins import (
    SIGNATURE_FILE,
    Keyring,
    PackageLimits,
    PackageVerificationError,
    PluginError,
    PublisherKey,
    SigningKey,
    build_package,
    key_id_for,
    pack_plugin,
    read_package,
    sign_package,
    verify_package,
    verify_tree,
)
from tests.core.plugins.conftest import NORMAL_PARSE, PluginFactory, manifest_dict


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(files: dict[str, bytes], *, modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((modes or {}).get(name, stat.S_IFREG | 0o644)) << 16
            archive.writestr(info, body)
    return buffer.getvalue()


def _reason(data: bytes, keyring: Keyring) -> str:
    with pytest.raises(PackageVerificationError) as caught:
        verify_package(data, keyring)
    return caught.value.reason


@pytest.fixture
def folder(make_plugin: PluginFactory) -> Path:
    return make_plugin(NORMAL_PARSE + "\ndef attack(self, request):\n    return None\n")


def test_signed_package_verifies_and_is_deterministic(folder: Path, key: SigningKey, keyring: Keyring) -> None:
    data = build_package(folder, key)
    assert data == build_package(folder, key)  # Ed25519 is deterministic and the zip has fixed metadata
    package = verify_package(data, keyring)
    assert package.verified
    assert package.manifest.id == "acme.demo"
    assert package.key_id == key.key_id
    assert set(package.files) == {"plugin.json", "plugin.py"}
    assert not read_package(data).verified


def test_unsigned_package_is_refused(folder: Path, keyring: Keyring) -> None:
    unsigned = pack_plugin(folder)
    assert read_package(unsigned).signature is None
    assert _reason(unsigned, keyring) == "missing_signature"


def _resigned(data: bytes, change: dict[str, bytes | None]) -> bytes:
    files = _files(data)
    for name, body in change.items():
        if body is None:
            files.pop(name)
        else:
            files[name] = body
    return _zip(files)


def test_tampering_is_detected(folder: Path, key: SigningKey, keyring: Keyring) -> None:
    data = build_package(folder, key)
    signature = json.loads(_files(data)[SIGNATURE_FILE])
    assert _reason(_resigned(data, {"plugin.py": b"import os\n"}), keyring) == "modified_file"
    assert _reason(_resigned(data, {"extra.py": b"x = 1\n"}), keyring) == "extra_file"
    forged = dict(signature, files={**signature["files"], "gone.py": "0" * 64})
    assert _reason(_resigned(data, {SIGNATURE_FILE: json.dumps(forged).encode()}), keyring) == "bad_signature"
    bad_hex = dict(signature, signature="zz")
    assert _reason(_resigned(data, {SIGNATURE_FILE: json.dumps(bad_hex).encode()}), keyring) == "bad_signature"
    assert _reason(_resigned(data, {SIGNATURE_FILE: b"not json"}), keyring) == "bad_signature"
    assert _reason(_resigned(data, {SIGNATURE_FILE: b"[]"}), keyring) == "bad_signature"
    no_files = {k: v for k, v in signature.items() if k != "files"}
    assert _reason(_resigned(data, {SIGNATURE_FILE: json.dumps(no_files).encode()}), keyring) == "bad_signature"


def test_missing_signed_file_and_id_mismatch(folder: Path, key: SigningKey, keyring: Keyring) -> None:
    (folder / "helper.py").write_text("X = 1\n")
    data = build_package(folder, key)
    assert _reason(_resigned(data, {"helper.py": None}), keyring) == "missing_file"
    # A validly signed list for another version cannot be paired with this manifest.
    other = json.loads(json.dumps(manifest_dict(version="2.0.0")))
    (folder / "plugin.json").write_text(json.dumps(other))
    newer = build_package(folder, key)
    swapped = _resigned(data, {SIGNATURE_FILE: _files(newer)[SIGNATURE_FILE]})
    assert _reason(swapped, keyring) in {"id_mismatch", "modified_file"}
    mixed = _resigned(newer, {"plugin.json": _files(data)["plugin.json"]})
    assert _reason(mixed, keyring) == "id_mismatch"


def test_key_must_be_trusted_bound_to_the_publisher_and_not_revoked(
    folder: Path, key: SigningKey, other_key: SigningKey
) -> None:
    data = build_package(folder, key)
    assert _reason(data, Keyring()) == "unknown_key"
    impostor = Keyring([PublisherKey(publisher="globex", public_key=key.public_bytes)])
    assert _reason(data, impostor) == "publisher_mismatch"
    keyring = Keyring([key.public()])
    keyring.revoke(key.key_id, "laptop stolen")
    assert _reason(data, keyring) == "revoked_key"
    with pytest.raises(PackageVerificationError) as caught:
        sign_package(pack_plugin(folder), other_key)
    assert caught.value.reason == "publisher_mismatch"


@pytest.mark.parametrize(
    ("name", "mode", "reason"),
    [
        ("/etc/passwd", None, "unsafe_path"),
        ("../escape.py", None, "unsafe_path"),
        ("a/../../escape.py", None, "unsafe_path"),
        ("a\\b.py", None, "unsafe_path"),
        ("C:/win.py", None, "unsafe_path"),
        ("./plugin2.py", None, "unsafe_path"),
        ("", None, "unsafe_path"),
        ("link.py", stat.S_IFLNK | 0o777, "unsafe_path"),
        ("dev", stat.S_IFCHR | 0o666, "unsafe_path"),
        ("fifo", stat.S_IFIFO | 0o666, "unsafe_path"),
        ("setup.py", None, "forbidden_file"),
        ("evil.pth", None, "forbidden_file"),
        ("sitecustomize.py", None, "forbidden_file"),
        ("native.so", None, "forbidden_file"),
        ("__pycache__/plugin.cpython-311.pyc", None, "forbidden_file"),
    ],
)
def test_unsafe_entries_are_refused_before_anything_is_written(
    folder: Path, keyring: Keyring, name: str, mode: int | None, reason: str
) -> None:
    files = {"plugin.json": (folder / "plugin.json").read_bytes(), name: b"payload"}
    data = _zip(files, modes={name: mode} if mode else None)
    assert _reason(data, keyring) == reason


def test_size_caps_and_malformed_archives(folder: Path, key: SigningKey, keyring: Keyring) -> None:
    data = build_package(folder, key)
    assert _reason(b"PK\x03\x04 not really a zip", keyring) == "malformed_archive"
    with pytest.raises(PackageVerificationError) as caught:
        verify_package(data, keyring, limits=PackageLimits(max_package_bytes=100))
    assert caught.value.reason == "too_large"
    for limits in (PackageLimits(max_files=2), PackageLimits(max_file_bytes=50), PackageLimits(max_total_bytes=300)):
        with pytest.raises(PackageVerificationError) as caught:
            verify_package(data, keyring, limits=limits)
        assert caught.value.reason == "too_large"
    bomb = _zip({"plugin.json": (folder / "plugin.json").read_bytes(), "zeros.txt": b"\0" * 5_000_000})
    assert len(bomb) < 100_000
    assert _reason(bomb, keyring) == "too_large"
    assert _reason(_zip({"plugin.py": b""}), keyring) == "bad_manifest"
    assert _reason(_zip({"plugin.json": b"{}"}), keyring) == "bad_manifest"
    reserved = json.dumps(manifest_dict("signalos.core-parser")).encode()
    assert _reason(_zip({"plugin.json": reserved}), keyring) == "reserved_id"


def test_duplicate_and_encrypted_entries(folder: Path, keyring: Keyring) -> None:
    manifest = (folder / "plugin.json").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("plugin.json", manifest)
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("plugin.json", manifest)
    assert _reason(buffer.getvalue(), keyring) == "malformed_archive"
    encrypted = bytearray(_zip({"plugin.json": manifest}))
    # Set the "encrypted" general-purpose flag in the central directory entry.
    central = encrypted.rfind(b"PK\x01\x02")
    encrypted[central + 8] |= 0x1
    assert _reason(bytes(encrypted), keyring) == "malformed_archive"


def test_packing_refuses_symlinks_and_skips_caches(folder: Path, key: SigningKey) -> None:
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert set(read_package(build_package(folder, key)).files) == {"plugin.json", "plugin.py"}
    (folder / "link.py").symlink_to("/etc/hostname")
    with pytest.raises(PackageVerificationError) as caught:
        pack_plugin(folder)
    assert caught.value.reason == "unsafe_path"


def test_verify_tree_rechecks_files_on_disk(folder: Path, key: SigningKey, keyring: Keyring, tmp_path: Path) -> None:
    package = verify_package(build_package(folder, key), keyring)
    root = package.extract(tmp_path / "installed")
    assert verify_tree(root, keyring).id == "acme.demo"
    (root / "plugin.py").write_text("# changed\n")
    with pytest.raises(PackageVerificationError) as caught:
        verify_tree(root, keyring)
    assert caught.value.reason == "modified_file"
    (root / "plugin.py").unlink()
    (root / "__pycache__").mkdir()
    with pytest.raises(PackageVerificationError, match="bytecode"):
        verify_tree(root, keyring)
    (root / "__pycache__").rmdir()
    (root / "plugin.json").unlink()
    with pytest.raises(PackageVerificationError) as caught:
        verify_tree(root, keyring)
    assert caught.value.reason == "missing_file"
    (tmp_path / "installed" / "evil").symlink_to("/etc")
    with pytest.raises(PackageVerificationError) as caught:
        verify_tree(root, keyring)
    assert caught.value.reason == "unsafe_path"


@settings(max_examples=15)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}\.txt", fullmatch=True), st.binary(max_size=200), max_size=4))
def test_any_set_of_data_files_round_trips(key: SigningKey, files: dict[str, bytes]) -> None:
    keyring = Keyring([key.public()])
    base = {"plugin.json": json.dumps(manifest_dict()).encode(), **files}
    package = verify_package(sign_package(_zip(base), key), keyring)
    assert package.files == base


def test_keys_and_keyring_persist(tmp_path: Path, key: SigningKey, other_key: SigningKey) -> None:
    path = tmp_path / "acme.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = SigningKey.load(path)
    assert loaded.key_id == key.key_id == key_id_for(key.public_bytes)
    assert "private" not in repr(loaded)
    keyring = Keyring([key.public(), other_key.public()])
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    keyring.revoke(other_key.key_id, "rotated", at=when)
    keyring.save(tmp_path / "keyring.json")
    again = Keyring.load(tmp_path / "keyring.json")
    assert len(again) == 2
    revoked = again.get(other_key.key_id)
    assert revoked is not None
    assert revoked.revoked_at == when
    assert revoked.revoked_reason == "rotated"
    # Re-adding a revoked key never un-revokes it; a key id cannot move to another publisher.
    again.add(other_key.public())
    assert again.get(other_key.key_id).revoked_at == when  # type: ignore[union-attr]
    with pytest.raises(PluginError, match="already bound"):
        again.add(PublisherKey(publisher="initech", public_key=key.public_bytes))
    with pytest.raises(PluginError, match="unknown key"):
        again.revoke("ed25519:nope", "x")
    assert {k.publisher for k in again} == {"acme", "globex"}


@pytest.mark.parametrize(
    "content",
    [
        "{",
        '{"keys": [{"publisher": "a", "public_key": "!!"}]}',
        '{"keys": [{"publisher": "a", "public_key": "AAAA", "key_id": "x"}]}',
    ],
)
def test_broken_key_files_are_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(PluginError):
        Keyring.load(path)
    with pytest.raises(PluginError):
        SigningKey.load(path)
    with pytest.raises(PluginError):
        Keyring.load(tmp_path / "missing.json")


def test_public_key_verification() -> None:
    signer = SigningKey.generate("acme")
    public = signer.public()
    assert public.verify(signer.sign(b"data"), b"data")
    assert not public.verify(signer.sign(b"data"), b"other")
    assert not PublisherKey(publisher="acme", public_key=b"short").verify(b"sig", b"data")
    assert public.to_dict()["key_id"] == signer.key_id


@settings(max_examples=40)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_ever_fail_verification_cleanly(blob: bytes) -> None:
    with pytest.raises(PackageVerificationError):
        verify_package(blob, Keyring())


@settings(max_examples=30)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_any_flipped_byte_in_a_signed_package_is_caught(position: int, value: int) -> None:
    signer = SigningKey.generate("acme")
    data = sign_package(
        _zip({"plugin.json": json.dumps(manifest_dict()).encode(), "plugin.py": b"X = 1\n" * 50}), signer
    )
    index = position % len(data)
    if data[index] == value:
        return
    corrupted = data[:index] + bytes([value]) + data[index + 1 :]
    try:
        package = verify_package(corrupted, Keyring([signer.public()]))
    except PackageVerificationError:
        return
    # A flip inside zip metadata that changes nothing (e.g. a timestamp) may still verify: content is intact.
    assert package.files == read_package(data).files
