"""The local install registry: verified package store plus per-user, per-account lifecycle state in SQLite.

Layout under ``root``::

    registry.sqlite3                     packages, installs, highest version seen, event history
    packages/<plugin_id>/<version>/      extracted, verified files (shared by every account using them)
    data/<user>/<account>/<plugin_id>/   private data folder of plugins declaring ``files: data``

States of an install (one row per user, account and plugin)::

    installed -> verified -> active <-> inactive
    verified | active | inactive | quarantined -> updating -> active or inactive (new version, or the
                                                              previous one after a rollback)
    active -> quarantined (repeated failures; update or remove)
    any -> removed

Install refuses (``PackageVerificationError.reason``): every reason of :func:`verify_package`, plus
``incompatible_host``, ``reserved_id``, ``duplicate_id`` (id held by another publisher), ``version_conflict``
(same id and version, different bytes) and ``rollback`` (lower than the highest version this registry has seen,
unless pinned).
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from signalos_core._errors import PackageVerificationError, PluginStateError
from signalos_core._version import __version__
from signalos_core.plugins._manifest import Manifest, host_compatible, parse_manifest, parse_version
from signalos_core.plugins._package import PackageLimits, PluginPackage, verify_package, verify_tree
from signalos_core.plugins._trust import Keyring

__all__ = ["InstallRecord", "InstallState", "PluginRegistry"]

InstallState = str  # one of _STATES; kept a plain string so it round-trips through SQLite and JSON unchanged
_STATES = ("installed", "verified", "active", "inactive", "updating", "quarantined", "removed")
_TRANSITIONS: dict[str, frozenset[str]] = {
    "installed": frozenset({"verified", "removed"}),
    "verified": frozenset({"active", "inactive", "updating", "removed"}),
    "active": frozenset({"inactive", "updating", "quarantined", "removed"}),
    "inactive": frozenset({"active", "updating", "removed"}),
    "updating": frozenset({"active", "inactive", "quarantined"}),
    "quarantined": frozenset({"updating", "removed"}),
    "removed": frozenset(),
}
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    plugin_id TEXT NOT NULL, version TEXT NOT NULL, publisher TEXT NOT NULL, key_id TEXT NOT NULL,
    digest TEXT NOT NULL, manifest TEXT NOT NULL, stored_at TEXT NOT NULL, PRIMARY KEY (plugin_id, version));
CREATE TABLE IF NOT EXISTS highest_seen (plugin_id TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS installs (
    user_id TEXT NOT NULL, account_id TEXT NOT NULL, plugin_id TEXT NOT NULL, version TEXT NOT NULL,
    state TEXT NOT NULL, previous_version TEXT, pinned INTEGER NOT NULL DEFAULT 0,
    crash_count INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, account_id, plugin_id));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user_id TEXT NOT NULL, account_id TEXT NOT NULL,
    plugin_id TEXT NOT NULL, version TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
"""


@attrs.frozen
class InstallRecord:
    """One plugin installed for one user and trading account."""

    user_id: str
    account_id: str
    plugin_id: str
    version: str
    state: InstallState
    previous_version: str | None
    pinned: bool
    crash_count: int
    reason: str
    updated_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _segment(value: str, what: str) -> str:
    if not _SAFE_SEGMENT.match(value) or ".." in value:
        raise ValueError(f"{what} {value!r} must match {_SAFE_SEGMENT.pattern} (it names a folder)")
    return value


class PluginRegistry:
    """Verified packages and their lifecycle for every user and account of this host (thread-safe)."""

    def __init__(
        self,
        root: str | Path,
        keyring: Keyring,
        *,
        host_version: str = __version__,
        reserved_ids: frozenset[str] = frozenset(),
        limits: PackageLimits | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keyring = keyring
        self.host_version = host_version
        self.reserved_ids = reserved_ids
        self.limits = limits or PackageLimits()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.root / "registry.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -------------------------------------------------------------------------------------------- queries
    def package_dir(self, plugin_id: str, version: str) -> Path:
        """Folder holding the extracted files of one stored version."""
        return self.root / "packages" / _segment(plugin_id, "plugin id") / _segment(version, "version")

    def data_dir(self, user_id: str, account_id: str, plugin_id: str) -> Path:
        """Private data folder of one install (created on demand)."""
        path = (
            self.root
            / "data"
            / _segment(user_id, "user id")
            / _segment(account_id, "account id")
            / _segment(plugin_id, "plugin id")
        )
        path.mkdir(parents=True, exist_ok=True)
        return path

    def manifest(self, plugin_id: str, version: str) -> Manifest:
        """The stored manifest of one version."""
        with self._lock:
            row = self._db.execute(
                "SELECT manifest FROM packages WHERE plugin_id=? AND version=?", (plugin_id, version)
            ).fetchone()
        if row is None:
            raise PluginStateError(f"{plugin_id} {version} is not stored here", state=None, plugin_id=plugin_id)
        return parse_manifest(row[0])

    def highest_seen(self, plugin_id: str) -> str | None:
        """The highest version of ``plugin_id`` ever stored (anti-rollback floor)."""
        with self._lock:
            row = self._db.execute("SELECT version FROM highest_seen WHERE plugin_id=?", (plugin_id,)).fetchone()
        return None if row is None else str(row[0])

    def get(self, user_id: str, account_id: str, plugin_id: str) -> InstallRecord:
        """The install record; raises :class:`PluginStateError` (``state=None``) when there is none."""
        with self._lock:
            row = self._db.execute(
                "SELECT user_id, account_id, plugin_id, version, state, previous_version, pinned, crash_count,"
                " reason, updated_at FROM installs WHERE user_id=? AND account_id=? AND plugin_id=?",
                (user_id, account_id, plugin_id),
            ).fetchone()
        if row is None:
            raise PluginStateError(
                f"{plugin_id} is not installed for {user_id}/{account_id}", state=None, plugin_id=plugin_id
            )
        return _record(row)

    def list(
        self, user_id: str, account_id: str | None = None, *, include_removed: bool = False
    ) -> list[InstallRecord]:
        """Installs of a user (optionally one account), sorted by account then plugin id."""
        query = (
            "SELECT user_id, account_id, plugin_id, version, state, previous_version, pinned, crash_count,"
            " reason, updated_at FROM installs WHERE user_id=?"
        )
        params: list[str] = [user_id]
        if account_id is not None:
            query += " AND account_id=?"
            params.append(account_id)
        if not include_removed:
            query += " AND state != 'removed'"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY account_id, plugin_id", params).fetchall()
        return [_record(row) for row in rows]

    def events(self, user_id: str, account_id: str, plugin_id: str) -> builtins.list[tuple[str, str, str]]:
        """History of one install as ``(version, event, detail)``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, event, detail FROM events WHERE user_id=? AND account_id=? AND plugin_id=?"
                " ORDER BY id",
                (user_id, account_id, plugin_id),
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    # ------------------------------------------------------------------------------------------- storing
    def store(self, data: bytes, *, pin: bool = False) -> PluginPackage:
        """Verify a package from its bytes and store its files; returns the verified package.

        Idempotent for the same bytes. Nothing in the package is executed.
        """
        package = verify_package(data, self.keyring, limits=self.limits)
        manifest = package.manifest
        plugin_id = manifest.id

        def refuse(message: str, reason: str) -> PackageVerificationError:
            return PackageVerificationError(message, reason=reason, plugin_id=plugin_id)

        if plugin_id in self.reserved_ids:
            raise refuse(f"{plugin_id} is the id of a core plugin", "reserved_id")
        if not host_compatible(manifest, self.host_version):
            raise refuse(
                f"{plugin_id} {manifest.version} needs host {manifest.host}, this host is {self.host_version}",
                "incompatible_host",
            )
        with self._transaction() as db:
            owner = db.execute("SELECT publisher FROM packages WHERE plugin_id=? LIMIT 1", (plugin_id,)).fetchone()
            if owner is not None and owner[0] != manifest.publisher:
                raise refuse(f"{plugin_id} is already installed from publisher {owner[0]!r}", "duplicate_id")
            existing = db.execute(
                "SELECT digest FROM packages WHERE plugin_id=? AND version=?", (plugin_id, manifest.version)
            ).fetchone()
            if existing is not None:
                if existing[0] != package.digest:
                    raise refuse(
                        f"{plugin_id} {manifest.version} is already stored with different content", "version_conflict"
                    )
                return package
            highest = self.highest_seen(plugin_id)
            if highest is not None and parse_version(manifest.version) < parse_version(highest) and not pin:
                raise refuse(
                    f"{plugin_id} {manifest.version} is older than {highest}, already seen here; pin the "
                    "version explicitly to downgrade",
                    "rollback",
                )
            target = self.package_dir(plugin_id, manifest.version)
            if target.exists():
                shutil.rmtree(target)  # leftover of an interrupted store: the row was never committed
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            package.extract(staging)
            staging.rename(target)
            db.execute(
                "INSERT INTO packages VALUES (?,?,?,?,?,?,?)",
                (
                    plugin_id,
                    manifest.version,
                    manifest.publisher,
                    package.key_id or "",
                    package.digest,
                    manifest.to_json().decode(),
                    _now().isoformat(),
                ),
            )
            if highest is None or parse_version(manifest.version) > parse_version(highest):
                db.execute(
                    "INSERT INTO highest_seen VALUES (?, ?) ON CONFLICT(plugin_id) DO UPDATE SET "
                    "version=excluded.version",
                    (plugin_id, manifest.version),
                )
        return package

    def verify_stored(self, plugin_id: str, version: str) -> Manifest:
        """Re-verify stored files against their signature and the current keyring (revocations apply)."""
        return verify_tree(self.package_dir(plugin_id, version), self.keyring)

    # ----------------------------------------------------------------------------------------- lifecycle
    def install(self, data: bytes, *, user_id: str, account_id: str, pin: bool = False) -> InstallRecord:
        """Verify, store and install a package for one account: ``installed`` then ``verified``."""
        package = self.store(data, pin=pin)
        manifest = package.manifest
        _segment(user_id, "user id")
        _segment(account_id, "account id")
        with self._transaction() as db:
            row = db.execute(
                "SELECT state FROM installs WHERE user_id=? AND account_id=? AND plugin_id=?",
                (user_id, account_id, manifest.id),
            ).fetchone()
            if row is not None and row[0] != "removed":
                raise PluginStateError(
                    f"{manifest.id} is already installed ({row[0]}); use update", state=row[0], plugin_id=manifest.id
                )
            db.execute(
                "INSERT OR REPLACE INTO installs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    user_id,
                    account_id,
                    manifest.id,
                    manifest.version,
                    "installed",
                    None,
                    int(pin),
                    0,
                    "",
                    _now().isoformat(),
                ),
            )
            self._event(db, user_id, account_id, manifest.id, manifest.version, "installed", package.digest)
        self.verify_stored(manifest.id, manifest.version)
        return self.transition(user_id, account_id, manifest.id, "verified")

    def transition(
        self,
        user_id: str,
        account_id: str,
        plugin_id: str,
        state: InstallState,
        *,
        reason: str = "",
        version: str | None = None,
        previous_version: str | None = None,
        reset_crashes: bool = False,
    ) -> InstallRecord:
        """Move an install to ``state`` if the lifecycle allows it; raises :class:`PluginStateError` otherwise."""
        if state not in _STATES:
            raise ValueError(f"unknown state {state!r}")
        with self._transaction() as db:
            current = self.get(user_id, account_id, plugin_id)
            if state not in _TRANSITIONS[current.state]:
                raise PluginStateError(
                    f"{plugin_id} cannot go from {current.state} to {state}"
                    + (f" ({current.reason})" if current.reason else ""),
                    state=current.state,
                    plugin_id=plugin_id,
                )
            new_version = version or current.version
            previous = previous_version if previous_version is not None else current.previous_version
            crashes = 0 if reset_crashes else current.crash_count
            db.execute(
                "UPDATE installs SET state=?, version=?, previous_version=?, crash_count=?, reason=?, updated_at=?"
                " WHERE user_id=? AND account_id=? AND plugin_id=?",
                (state, new_version, previous, crashes, reason, _now().isoformat(), user_id, account_id, plugin_id),
            )
            self._event(db, user_id, account_id, plugin_id, new_version, state, reason)
        return self.get(user_id, account_id, plugin_id)

    def record_crash(self, user_id: str, account_id: str, plugin_id: str, reason: str, *, limit: int) -> InstallRecord:
        """Count a contained failure; at ``limit`` failures the install is quarantined with ``reason``."""
        with self._transaction() as db:
            current = self.get(user_id, account_id, plugin_id)
            crashes = current.crash_count + 1
            db.execute(
                "UPDATE installs SET crash_count=?, updated_at=? WHERE user_id=? AND account_id=? AND plugin_id=?",
                (crashes, _now().isoformat(), user_id, account_id, plugin_id),
            )
            self._event(db, user_id, account_id, plugin_id, current.version, "crash", reason)
        if crashes >= limit and current.state == "active":
            return self.transition(
                user_id,
                account_id,
                plugin_id,
                "quarantined",
                reason=f"quarantined after {crashes} failures; last: {reason}",
            )
        return self.get(user_id, account_id, plugin_id)

    def remove(self, user_id: str, account_id: str, plugin_id: str) -> InstallRecord:
        """Mark removed and delete the account's data folder and any stored version nobody uses any more."""
        record = self.transition(user_id, account_id, plugin_id, "removed")
        shutil.rmtree(self.root / "data" / user_id / account_id / plugin_id, ignore_errors=True)
        with self._transaction() as db:
            in_use = {
                row[0]
                for row in db.execute(
                    "SELECT version FROM installs WHERE plugin_id=? AND state != 'removed' UNION "
                    "SELECT previous_version FROM installs WHERE plugin_id=? AND state != 'removed'",
                    (plugin_id, plugin_id),
                )
            }
            for (version,) in db.execute("SELECT version FROM packages WHERE plugin_id=?", (plugin_id,)).fetchall():
                if version not in in_use:
                    db.execute("DELETE FROM packages WHERE plugin_id=? AND version=?", (plugin_id, version))
                    shutil.rmtree(self.package_dir(plugin_id, version), ignore_errors=True)
        return record

    @staticmethod
    def _event(db: sqlite3.Connection, *row: str) -> None:
        user_id, account_id, plugin_id, version, event, detail = row
        db.execute(
            "INSERT INTO events (at, user_id, account_id, plugin_id, version, event, detail) VALUES (?,?,?,?,?,?,?)",
            (_now().isoformat(), user_id, account_id, plugin_id, version, event, detail),
        )


def _record(row: tuple[object, ...]) -> InstallRecord:
    return InstallRecord(
        user_id=str(row[0]),
        account_id=str(row[1]),
        plugin_id=str(row[2]),
        version=str(row[3]),
        state=str(row[4]),
        previous_version=None if row[5] is None else str(row[5]),
        pinned=bool(row[6]),
        crash_count=int(str(row[7])),
        reason=str(row[8]),
        updated_at=dt.datetime.fromisoformat(str(row[9])),
    )
