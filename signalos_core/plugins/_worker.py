"""The plugin worker: runs inside the sandboxed subprocess, one per active plugin.

The host starts it as ``python -I -B -c <bootstrap> <config-json>``; the bootstrap loads this file by path
(not through ``signalos_core.plugins``, whose imports are heavy and would run before lockdown). Order matters:

1. import what the worker itself needs (ctypes, msgspec, the protocol) - nothing after lockdown may need a
   file the sandbox hides (trap 1 of the reference);
2. move the protocol pipes off fds 0/1 and point fd 1 at the stderr log, so ``print`` cannot corrupt frames;
3. lock down: resource limits, then Landlock, then seccomp (seccomp last: it forbids ``setrlimit``);
4. only then import and instantiate the plugin, so even its import-time code runs confined;
5. answer the handshake (frame id 0) and serve calls until the host closes the pipe.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys
import time
import types
from collections.abc import Callable
from typing import Any

__all__ = ["KIND_METHODS", "load_plugin", "lockdown", "main", "serve"]

#: Methods the host may call, per plugin kind (``self_test`` and ``ping`` exist for every kind).
KIND_METHODS: dict[str, tuple[str, ...]] = {
    "parser": ("parse",),
    "strategy": ("adjust",),
    "provider": ("test_connection", "fetch_signals", "submit_order"),
}
_ERROR_TEXT_LIMIT = 1000


def _load_sibling(name: str) -> types.ModuleType:
    """Import a sibling module by path, without importing the ``signalos_core.plugins`` package."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    # A name inside the package namespace (so coverage and tracebacks attribute it), but not the real module's:
    # the host's own ``signalos_core.plugins._protocol`` must never be replaced.
    spec = importlib.util.spec_from_file_location(f"signalos_core.plugins._sandboxed_{name.strip('_')}", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with this one
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def lockdown(config: dict[str, Any]) -> dict[str, Any]:
    """Apply rlimits, Landlock and seccomp as ``config`` says; returns what was applied (for the handshake).

    A protection the config requires but the kernel lacks raises ``OSError``: the worker fails closed.
    """
    # Load both confinement modules before any of them applies: after Landlock, this file's folder may be
    # unreadable (trap 1 of the reference: import everything before locking down).
    landlock = _load_sibling("_landlock")
    seccomp = _load_sibling("_seccomp")
    limits = config["limits"]
    memory = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # soft limit -> SIGXCPU (terminates), hard limit one second later -> SIGKILL if SIGXCPU is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["fsize_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["nofile"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    applied: dict[str, Any] = {"rlimits": True, "landlock_abi": 0, "seccomp": False}
    if config["landlock"]:
        applied["landlock_abi"] = landlock.restrict_self(
            read_paths=config["read_paths"],
            write_paths=config["write_paths"],
            connect_ports=config["ports"],
        )
    if config["seccomp"]:
        seccomp.apply_filter(allow_network=bool(config["network"]))
        applied["seccomp"] = True
    return applied


def load_plugin(config: dict[str, Any]) -> dict[str, Callable[..., Any]]:
    """Import the entry point and return the callable methods the host may use, by name."""
    module_name, _, attribute = str(config["entry_point"]).partition(":")
    sys.path.insert(0, str(config["plugin_dir"]))
    module = importlib.import_module(module_name)
    target = getattr(module, attribute)
    plugin = target() if isinstance(target, type) else target
    methods: dict[str, Callable[..., Any]] = {}
    for name in KIND_METHODS[str(config["kind"])]:
        method = getattr(plugin, name, None)
        if not callable(method):
            raise TypeError(f"{config['entry_point']} has no method {name}() required for a {config['kind']} plugin")
        methods[name] = method
    self_test = getattr(plugin, "self_test", None)
    methods["self_test"] = self_test if callable(self_test) else (lambda: True)
    return methods


def serve(
    in_fd: int,
    out_fd: int,
    methods: dict[str, Callable[..., Any]],
    *,
    max_request: int,
    max_reply: int,
    protocol: types.ModuleType,
) -> None:
    """Answer calls until the host closes the request pipe."""
    import msgspec

    decoder = msgspec.msgpack.Decoder(protocol.Call)
    encoder = msgspec.msgpack.Encoder()
    call_id = 0
    while True:
        try:
            body = protocol.read_frame_blocking(in_fd, max_request)
        except protocol.FrameError:
            return
        try:
            call = decoder.decode(body)
            call_id = call.id
            if call.method == "ping":
                result = call.payload
            else:
                method = methods.get(call.method)
                if method is None:
                    raise LookupError(f"no method {call.method!r} for this plugin")
                result = method() if call.method == "self_test" else method(call.payload)
            reply = protocol.Reply(call_id, True, result, cpu=time.process_time())
            frame = protocol.encode_frame(encoder, reply)
        except BaseException as exc:
            frame = _error_frame(protocol, encoder, call_id, exc)
        if len(frame) - protocol.HEADER.size > max_reply:
            error = OverflowError(f"reply of {len(frame)} bytes exceeds the {max_reply}-byte cap")
            frame = _error_frame(protocol, encoder, call_id, error, error_type="ReplyTooLarge")
        del body
        os.write(out_fd, frame)


def _error_frame(
    protocol: types.ModuleType, encoder: Any, call_id: int, exc: BaseException, *, error_type: str = ""
) -> Any:
    kind = error_type or type(exc).__name__
    if isinstance(exc, TypeError) and "Encoding objects of type" in str(exc):
        kind = "UnencodableReply"
    text = str(exc)[:_ERROR_TEXT_LIMIT]
    return protocol.encode_frame(encoder, protocol.Reply(call_id, False, None, kind, text, time.process_time()))


def main() -> None:  # pragma: no cover - runs only inside the sandboxed subprocess (exercised by every sandbox test)
    """Worker entry point (see the module docstring for the order of steps)."""
    import msgspec

    config = json.loads(sys.argv[1])
    protocol = _load_sibling("_protocol")
    encoder = msgspec.msgpack.Encoder()
    in_fd, out_fd = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.dont_write_bytecode = True
    try:
        applied = lockdown(config)
        methods = load_plugin(config)
    except BaseException as exc:
        os.write(
            out_fd,
            protocol.encode_frame(
                encoder, protocol.Reply(0, False, None, type(exc).__name__, str(exc)[:_ERROR_TEXT_LIMIT])
            ),
        )
        os._exit(3)
    os.write(out_fd, protocol.encode_frame(encoder, protocol.Reply(0, True, applied)))
    serve(
        in_fd,
        out_fd,
        methods,
        max_request=int(config["max_request"]),
        max_reply=int(config["max_reply"]),
        protocol=protocol,
    )
    os._exit(0)
