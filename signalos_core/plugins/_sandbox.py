"""Host side of the sandbox: start, call, time out, kill and restart one plugin worker process.

Layers, outermost first (see docs/plugins.md for the threat model):

* **bubblewrap** when ``bwrap`` is installed: empty network namespace unless network is declared, a mount
  namespace where only the interpreter, the plugin (read-only) and its data folder exist, a PID namespace,
  ``--clearenv``, ``--die-with-parent``, ``--new-session``;
* an **explicit minimal environment** (never the host's: trap 2), ``python -I -B`` (no user site, no
  ``PYTHON*`` variables, no bytecode written);
* inside the worker: **rlimits** (address space, CPU, file size, open files, no core), **Landlock** (read-only
  interpreter and plugin, optional private data folder, TCP connect to declared ports), **seccomp** (no exec,
  fork, ptrace, signals to others, namespaces, sockets unless declared, ...);
* on the host: a **wall-clock deadline** per call (kill the worker, restart on next use) and a **size cap**
  on every reply frame, checked before the body is read.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import msgspec

from signalos_core._errors import SandboxError
from signalos_core.plugins import _landlock, _seccomp
from signalos_core.plugins._manifest import Manifest
from signalos_core.plugins._protocol import Call, FrameError, Reply, encode_frame, read_frame_deadline

__all__ = ["PluginWorker", "SandboxPolicy", "sandbox_capabilities"]

_WORKER_FILE = Path(__file__).with_name("_worker.py")
_BOOTSTRAP = (
    "import importlib.util as u,sys;"
    "s=u.spec_from_file_location('signalos_core.plugins._sandboxed_worker',sys.argv[1]);"
    "m=u.module_from_spec(s);sys.modules[s.name]=m;s.loader.exec_module(m);"
    "sys.argv=sys.argv[1:];m.main()"
)
_SIGXCPU_EXITS = {-signal.SIGXCPU, 128 + signal.SIGXCPU}
_STDERR_TAIL = 2000
#: Files a networked plugin needs for DNS and TLS; nothing else under /etc is visible.
_NETWORK_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/usr/share/ca-certificates",
    "/etc/ca-certificates",
)
_SYSTEM_LIBS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib")


def sandbox_capabilities() -> dict[str, Any]:
    """What this machine offers: ``seccomp`` (bool), ``landlock_abi`` (0 = none), ``bwrap`` (path or None)."""
    return {
        "seccomp": _seccomp.SECCOMP_SUPPORTED,
        "landlock_abi": _landlock.landlock_abi(),
        "bwrap": shutil.which("bwrap"),
    }


@attrs.frozen
class SandboxPolicy:
    """Host-side settings that bound what any plugin gets, whatever its manifest asks for.

    ``require_seccomp``/``require_landlock`` make the worker refuse to start without them (fail closed);
    ``use_bwrap`` is ``None`` for "when installed". Manifest limits are capped by the ``max_*`` values.
    """

    require_seccomp: bool = True
    require_landlock: bool = True
    use_bwrap: bool | None = None
    max_timeout_ms: int = 10_000
    max_memory_mb: int = 1024
    max_cpu_seconds: int = 600
    max_reply_kb: int = 4096
    max_request_bytes: int = 4 * 1024 * 1024
    startup_timeout_s: float = 10.0
    file_size_bytes: int = 1024 * 1024
    open_files: int = 64
    #: Recycle the worker (a planned restart, not a crash) once it used this share of its CPU budget.
    cpu_recycle_ratio: float = 0.8


def _python_paths() -> list[str]:
    """Where the interpreter imports from after lockdown: its stdlib and site-packages, nothing else.

    Deliberately not ``sys.path``: that can hold the current directory or a project checkout (with its
    ``.env``), which a plugin must not read.
    """
    paths = {sys.base_prefix, os.path.dirname(sys.executable), os.path.join(sys.prefix, "pyvenv.cfg")}
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths.update(value for key, value in sysconfig.get_paths().items() if key in names)
    return sorted(path for path in paths if os.path.isabs(path) and os.path.exists(path))


class PluginWorker:
    """One sandboxed worker process for one plugin. Thread-safe: calls are serialised.

    The worker starts on first use (or :meth:`start`), and is restarted transparently on the next call after
    a timeout or crash; the failed call raises :class:`SandboxError` with a ``reason``: ``timeout``,
    ``crashed``, ``cpu_limit``, ``memory``, ``denied``, ``bad_reply``, ``too_large``, ``plugin_error``,
    ``start_failed``, ``closed``.
    """

    def __init__(
        self,
        plugin_dir: str | os.PathLike[str],
        manifest: Manifest,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        policy: SandboxPolicy | None = None,
    ) -> None:
        self.plugin_dir = Path(plugin_dir).resolve()
        self.manifest = manifest
        self.policy = policy or SandboxPolicy()
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        if manifest.permissions.files == "data" and self.data_dir is None:
            raise SandboxError(
                f"{manifest.id} declares a data folder; pass data_dir", reason="start_failed", plugin_id=manifest.id
            )
        permissions = manifest.permissions
        self.timeout_s = min(permissions.timeout_ms, self.policy.max_timeout_ms) / 1000.0
        self.max_reply = min(permissions.max_message_kb, self.policy.max_reply_kb) * 1024
        self.cpu_seconds = min(permissions.cpu_seconds, self.policy.max_cpu_seconds)
        self.applied: dict[str, Any] = {}
        self.starts = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._poller: select.poll | None = None
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Reply)
        self._next_id = 1
        self._closed = False

    # ------------------------------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        """True while a worker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the current worker (of bwrap when bubblewrap is used)."""
        return None if self._process is None else self._process.pid

    def start(self) -> dict[str, Any]:
        """Start the worker if needed; returns what the sandbox applied (rlimits, landlock_abi, seccomp)."""
        with self._lock:
            self._ensure_started()
            return dict(self.applied)

    def close(self) -> None:
        """Stop the worker; later calls raise ``SandboxError(reason="closed")``."""
        with self._lock:
            self._closed = True
            self._kill()

    def __enter__(self) -> PluginWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _config(self) -> dict[str, Any]:
        permissions = self.manifest.permissions
        read_paths = [
            *_python_paths(),
            *_SYSTEM_LIBS,
            str(self.plugin_dir),
            str(_WORKER_FILE.parent),
            "/dev/null",
            "/dev/urandom",
        ]
        if permissions.network:
            read_paths.extend(_NETWORK_FILES)
        return {
            "plugin_dir": str(self.plugin_dir),
            "entry_point": self.manifest.entry_point,
            "kind": str(self.manifest.kind),
            "read_paths": read_paths,
            "write_paths": [str(self.data_dir)] if permissions.files == "data" and self.data_dir else [],
            "network": bool(permissions.network),
            "ports": list(permissions.network_ports),
            "limits": {
                "memory_mb": min(permissions.memory_mb, self.policy.max_memory_mb),
                "cpu_seconds": self.cpu_seconds,
                "fsize_bytes": self.policy.file_size_bytes,
                "nofile": self.policy.open_files,
            },
            "max_request": self.policy.max_request_bytes,
            "max_reply": self.max_reply,
            "seccomp": self.policy.require_seccomp,
            "landlock": self.policy.require_landlock,
        }

    def _environment(self) -> dict[str, str]:
        # Explicit and minimal: nothing of the host's environment (secrets, proxies, tokens) is inherited.
        env = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "random"}
        env["HOME"] = str(self.data_dir) if self.manifest.permissions.files == "data" and self.data_dir else "/"
        env["TZ"] = "UTC"
        return env

    def _use_bwrap(self) -> str | None:
        found = shutil.which("bwrap")
        if self.policy.use_bwrap is False:
            return None
        if self.policy.use_bwrap and found is None:
            raise SandboxError(
                "bubblewrap (bwrap) is required by the policy but not installed",
                reason="start_failed",
                plugin_id=self.manifest.id,
            )
        return found

    def _command(self, config_json: str) -> list[str]:
        python = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, str(_WORKER_FILE), config_json]
        bwrap = self._use_bwrap()
        if bwrap is None:
            return python
        command = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]
        if self.manifest.permissions.network:
            command.append("--share-net")
        for key, value in self._environment().items():
            command += ["--setenv", key, value]
        config = msgspec.json.decode(config_json)
        for path in sorted(set(config["read_paths"])):
            if os.path.exists(path) and not path.startswith("/dev/"):
                command += ["--ro-bind", path, path]
        for path in config["write_paths"]:
            command += ["--bind", path, path]
        command += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/", "--"]
        return command + python

    def _ensure_started(self) -> None:
        if self._closed:
            raise SandboxError(f"worker of {self.manifest.id} is closed", reason="closed", plugin_id=self.manifest.id)
        if self.running:
            return
        self._kill()
        config_json = msgspec.json.encode(self._config()).decode()
        command = self._command(config_json)
        # Closed in _kill(); a with-block cannot span the worker's lifetime.
        self._stderr = tempfile.TemporaryFile(prefix="signalos-plugin-stderr-")  # noqa: SIM115
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell; the plugin runs confined
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=self._environment(),
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            self._kill()
            raise SandboxError(
                f"cannot start the worker of {self.manifest.id}: {exc}",
                reason="start_failed",
                plugin_id=self.manifest.id,
            ) from exc
        self._process = process
        self.starts += 1
        assert process.stdout is not None  # noqa: S101 - stdout=PIPE above guarantees it
        os.set_blocking(process.stdout.fileno(), False)
        self._poller = select.poll()
        self._poller.register(process.stdout.fileno(), select.POLLIN)
        deadline = time.monotonic() + self.policy.startup_timeout_s
        try:
            reply = self._read_reply(deadline, expected_id=0)
        except SandboxError as exc:
            self._kill()
            raise SandboxError(
                f"{self.manifest.id} failed to start: {exc}", reason="start_failed", plugin_id=self.manifest.id
            ) from exc
        if not reply.ok:
            detail = f"{reply.error_type}: {reply.error}"
            self._kill()
            raise SandboxError(
                f"{self.manifest.id} failed to start: {detail}", reason="start_failed", plugin_id=self.manifest.id
            )
        self.applied = dict(reply.result) if isinstance(reply.result, dict) else {}

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr_tail(self) -> str:
        """The last lines the plugin wrote to stdout/stderr (for error messages and logs)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(size - _STDERR_TAIL, 0))
        return str(self._stderr.read().decode("utf-8", "replace"))

    # ----------------------------------------------------------------------------------------------- calls
    def call(self, method: str, payload: Any = None, *, timeout_s: float | None = None) -> Any:
        """Call ``method(payload)`` in the worker and return its (untrusted, plain) result."""
        with self._lock:
            self._ensure_started()
            process = self._process
            assert process is not None  # noqa: S101 - started above
            assert process.stdin is not None  # noqa: S101 - stdin=PIPE
            call_id = self._next_id
            self._next_id += 1
            frame = encode_frame(self._encoder, Call(call_id, method, payload))
            if len(frame) > self.policy.max_request_bytes:
                raise SandboxError(
                    f"request of {len(frame)} bytes is too large", reason="too_large", plugin_id=self.manifest.id
                )
            deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
            try:
                _write_all(process.stdin.fileno(), frame)
            except OSError:
                self._raise_dead("the worker stopped reading requests")
            reply = self._read_reply(deadline, expected_id=call_id)
            if reply.cpu > self.cpu_seconds * self.policy.cpu_recycle_ratio:
                self._kill()  # planned recycle before RLIMIT_CPU fires; the next call starts afresh
            if reply.ok:
                return reply.result
            raise self._plugin_failure(reply)

    def _plugin_failure(self, reply: Reply) -> SandboxError:
        plugin_id = self.manifest.id
        text = f"{reply.error_type}: {reply.error}"
        if reply.error_type == "MemoryError":
            return SandboxError(
                f"{plugin_id} ran out of its memory limit ({text})", reason="memory", plugin_id=plugin_id
            )
        if reply.error_type == "PermissionError":
            return SandboxError(
                f"{plugin_id} tried something it has no permission for ({text})", reason="denied", plugin_id=plugin_id
            )
        if reply.error_type == "ReplyTooLarge":
            return SandboxError(
                f"{plugin_id} produced a reply over its size cap ({reply.error})",
                reason="too_large",
                plugin_id=plugin_id,
            )
        if reply.error_type == "UnencodableReply":
            return SandboxError(
                f"{plugin_id} returned data that is not plain JSON-like values ({reply.error})",
                reason="bad_reply",
                plugin_id=plugin_id,
            )
        return SandboxError(f"{plugin_id} raised {text}", reason="plugin_error", plugin_id=plugin_id)

    def _read_reply(self, deadline: float, *, expected_id: int) -> Reply:
        process = self._process
        assert process is not None  # noqa: S101 - only called with a started worker
        assert process.stdout is not None  # noqa: S101 - stdout=PIPE
        assert self._poller is not None  # noqa: S101 - set when the worker started
        plugin_id = self.manifest.id
        try:
            body = read_frame_deadline(process.stdout.fileno(), self.max_reply, deadline, self._poller)
        except FrameError as exc:
            if exc.reason == "timeout":
                self._kill()
                raise SandboxError(
                    f"{plugin_id} did not answer within its deadline; the worker was killed and will restart",
                    reason="timeout",
                    plugin_id=plugin_id,
                ) from None
            if exc.reason == "eof":
                self._raise_dead("the worker exited")
            self._kill()
            reason = "too_large" if exc.reason == "too_large" else "bad_reply"
            raise SandboxError(
                f"{plugin_id} sent an invalid reply ({exc}); the worker was killed", reason=reason, plugin_id=plugin_id
            ) from None
        try:
            reply = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            self._kill()
            raise SandboxError(
                f"{plugin_id} sent a malformed reply ({exc}); the worker was killed",
                reason="bad_reply",
                plugin_id=plugin_id,
            ) from None
        if reply.id != expected_id:
            self._kill()
            raise SandboxError(
                f"{plugin_id} answered call {reply.id}, expected {expected_id}", reason="bad_reply", plugin_id=plugin_id
            )
        return reply

    def _raise_dead(self, what: str) -> None:
        process = self._process
        code = process.wait(timeout=5) if process is not None else None
        tail = self.stderr_tail().strip()
        self._kill()
        plugin_id = self.manifest.id
        suffix = f"; last output: {tail[-500:]}" if tail else ""
        if code in _SIGXCPU_EXITS:
            raise SandboxError(
                f"{plugin_id} used up its CPU budget of {self.cpu_seconds} s and was stopped",
                reason="cpu_limit",
                plugin_id=plugin_id,
            )
        raise SandboxError(
            f"{plugin_id} crashed ({what}, exit code {code}){suffix}", reason="crashed", plugin_id=plugin_id
        )


def _write_all(fd: int, data: bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
