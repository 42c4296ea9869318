"""The service's plugin host: the library's registry and sandboxed runtime, driven from the database.

The database is the authority for installs (every replica sees the same states); the library registry under
``<var_dir>/plugins`` is this replica's verified package cache and worker host. Before acting on an install,
:meth:`PluginHost.ensure_local` brings the local registry to the database's version and state, so a
restarted replica, or another one, resumes where the install is. The keyring is rebuilt from the publisher
keys table before each operation, so a revocation applies at once (stored files are re-verified whenever a
worker starts).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from litestar import Litestar

from signalos_core import PluginError
from signalos_core.plugins import (
    InstallRecord,
    Keyring,
    PluginRegistry,
    PluginRuntime,
    PublisherKey,
    SandboxPolicy,
)

__all__ = ["PluginHost", "marketplace_lifespan", "sandbox_policy"]

T = TypeVar("T")
#: Core plugin ids no third-party package may take (the library also reserves core publisher names).
CORE_PLUGIN_IDS = frozenset({"signalos.parser", "signalos.paper-broker", "signalos.compliance"})


def sandbox_policy() -> SandboxPolicy:
    """The library's default policy: seccomp and Landlock are required, so a worker on a kernel without them
    refuses to start (fail closed) instead of running untrusted code unconfined; bubblewrap is used when installed.
    """
    return SandboxPolicy()


class PluginHost:
    """One per application: a registry, a runtime and a lock serialising lifecycle changes."""

    def __init__(self, root: Path, policy: SandboxPolicy | None = None) -> None:
        self.registry = PluginRegistry(root, Keyring(), reserved_ids=CORE_PLUGIN_IDS)
        self.runtime = PluginRuntime(self.registry, policy=policy or sandbox_policy())
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop every worker and close the registry."""
        self.runtime.close()
        self.registry.close()

    def set_keys(self, keys: Iterable[PublisherKey]) -> None:
        """Replace the trusted keys (called with the publisher-key table before each operation)."""
        self.registry.keyring = Keyring(list(keys))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking registry/runtime call in a worker thread, one lifecycle change at a time."""

        def locked() -> T:
            with self._lock:
                return fn(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def local_record(self, user_id: str, account_id: str, plugin_id: str) -> InstallRecord | None:
        """The local registry's record, or None when this replica has never installed it."""
        try:
            return self.registry.get(user_id, account_id, plugin_id)
        except PluginError:
            return None

    def ensure_local(
        self, user_id: str, account_id: str, plugin_id: str, *, version: str, state: str, artifact: Callable[[], bytes]
    ) -> InstallRecord:
        """Make the local registry hold ``version`` in ``state`` (installing from ``artifact()`` if needed).

        Runs inside :meth:`run`. ``state`` is the database's; a worker is started only for ``active``.
        """
        record = self.local_record(user_id, account_id, plugin_id)
        if record is not None and record.version != version and record.state != "removed":
            self.runtime.remove(user_id, account_id, plugin_id)
            record = None
        if record is None or record.state == "removed":
            record = self.registry.install(artifact(), user_id=user_id, account_id=account_id, pin=True)
        if state == "active" and record.state != "active":
            if record.state == "quarantined":
                return record
            record = self.runtime.activate(user_id, account_id, plugin_id)
        elif state == "inactive" and record.state in ("verified", "active"):
            record = self.runtime.deactivate(user_id, account_id, plugin_id)
        return record


@asynccontextmanager
async def marketplace_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start the plugin host under ``<var_dir>/plugins`` and stop every worker at shutdown."""
    settings = app.state.settings
    host = PluginHost(Path(settings.var_dir) / "plugins")
    app.state.plugin_host = host
    try:
        yield
    finally:
        await asyncio.to_thread(host.close)
