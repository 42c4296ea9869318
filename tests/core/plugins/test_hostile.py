"""Hostile plugins, each a real plugin in the real sandbox (real subprocess, seccomp, Landlock, bwrap).

Every case checks three things: the attack is contained (nothing leaked, created or reached), the error the
user sees names the plugin and says what happened, and the host keeps serving (a normal call right after
succeeds). Cases run with the in-worker layers only ("plain") and inside bubblewrap ("bwrap") when installed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from signalos_core.plugins import PluginWorker, SandboxError, SandboxPolicy, parse_manifest
from tests.core.plugins.conftest import NORMAL_PARSE, PluginFactory

MODES = [
    pytest.param(False, id="plain"),
    pytest.param(True, id="bwrap", marks=pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bwrap")),
]
FAST = {"cpu_seconds": 20, "memory_mb": 256, "timeout_ms": 3000}


def _worker(folder: Path, bwrap: bool, **policy: Any) -> PluginWorker:
    manifest = parse_manifest((folder / "plugin.json").read_bytes())
    return PluginWorker(folder, manifest, policy=SandboxPolicy(use_bwrap=bwrap, startup_timeout_s=20.0, **policy))


def _attack(
    make_plugin: PluginFactory, body: str, bwrap: bool, *, prelude: str = "", permissions: dict[str, Any] | None = None
) -> tuple[PluginWorker, SandboxError]:
    """Run ``attack()`` in a fresh plugin; return the worker and the SandboxError it produced."""
    folder = make_plugin(
        NORMAL_PARSE + "\ndef attack(self, request):\n" + _indent(body),
        module_prelude=prelude,
        permissions={**FAST, **(permissions or {})},
    )
    worker = _worker(folder, bwrap)
    with pytest.raises(SandboxError) as caught:
        worker.call("parse", {"text": "attack"})
    assert "acme.demo" in str(caught.value)
    return worker, caught.value


def _indent(body: str) -> str:
    return "\n".join("    " + line for line in body.strip().splitlines())


def _still_serving(worker: PluginWorker) -> None:
    assert worker.call("parse", {"text": "ok"}) == {"symbol": "EURUSD", "side": "buy"}
    worker.close()


@pytest.mark.parametrize("bwrap", MODES)
def test_network_connect_is_denied_and_nothing_reaches_the_listener(make_plugin: PluginFactory, bwrap: bool) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    worker, error = _attack(
        make_plugin,
        f"""
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
return "connected"
""",
        bwrap,
    )
    assert error.reason == "denied"
    assert "no permission" in str(error)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
def test_reading_a_file_outside_the_plugin_folder_fails(
    make_plugin: PluginFactory, bwrap: bool, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    worker, error = _attack(make_plugin, f"return open({str(secret)!r}).read()", bwrap)
    # Landlock answers EACCES; under bubblewrap the file does not even exist in the plugin's mount namespace.
    assert error.reason in {"denied", "plugin_error"}
    assert "TOP-SECRET-VALUE" not in str(error)
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
@pytest.mark.parametrize("target", ["outside", "own-folder"])
def test_writing_files_fails_outside_and_inside_its_own_folder(
    make_plugin: PluginFactory, bwrap: bool, tmp_path: Path, target: str
) -> None:
    path = (tmp_path / "pwned.txt") if target == "outside" else None
    body = (
        f"open({str(path)!r}, 'w').write('x')"
        if path
        else "import os\nopen(os.path.join(os.path.dirname(__file__), 'pwned.txt'), 'w').write('x')"
    )
    worker, error = _attack(make_plugin, body + "\nreturn None", bwrap)
    assert error.reason in {"denied", "plugin_error"}
    assert not (tmp_path / "pwned.txt").exists()
    assert not list(tmp_path.rglob("pwned.txt"))
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("import os\nwhile True:\n    os.fork()", id="fork-bomb"),
        pytest.param("import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned'])", id="exec"),
        pytest.param("import subprocess\nreturn subprocess.run(['/bin/true']).returncode", id="subprocess"),
        pytest.param("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", id="kill-host"),
    ],
)
def test_process_escapes_are_denied(make_plugin: PluginFactory, bwrap: bool, body: str) -> None:
    worker, error = _attack(make_plugin, body, bwrap)
    assert error.reason == "denied"
    assert "Operation not permitted" in str(error)
    _still_serving(worker)


@pytest.mark.parametrize("limits", ["(-1, -1)", "(10, 10)"], ids=["raise", "even-lower"])
def test_resource_limits_cannot_be_changed(make_plugin: PluginFactory, limits: str) -> None:
    # The kernel lets root raise limits and anyone lower them; seccomp refuses both (EPERM, which CPython
    # reports as ValueError "not allowed to raise maximum limit").
    worker, error = _attack(make_plugin, f"import resource\nresource.setrlimit(resource.RLIMIT_AS, {limits})", False)
    assert error.reason == "plugin_error"
    assert "not allowed" in str(error)
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
def test_infinite_loop_hits_the_deadline_and_the_worker_restarts(make_plugin: PluginFactory, bwrap: bool) -> None:
    worker, error = _attack(make_plugin, "while True:\n    pass", bwrap, permissions={"timeout_ms": 300})
    assert error.reason == "timeout"
    assert "deadline" in str(error)
    starts = worker.starts
    _still_serving(worker)
    assert worker.starts == starts + 1


def test_blocking_sleep_overruns_the_deadline(make_plugin: PluginFactory) -> None:
    worker, error = _attack(make_plugin, "import time\ntime.sleep(30)", False, permissions={"timeout_ms": 200})
    assert error.reason == "timeout"
    _still_serving(worker)


def test_cpu_budget_stops_a_busy_plugin(make_plugin: PluginFactory) -> None:
    # Deadline longer than the 1 s CPU budget: RLIMIT_CPU (SIGXCPU) is what stops it.
    worker, error = _attack(
        make_plugin, "while True:\n    pass", False, permissions={"cpu_seconds": 1, "timeout_ms": 8000}
    )
    assert error.reason == "cpu_limit"
    assert "CPU budget" in str(error)
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
def test_memory_blow_up_is_a_memory_error_not_a_host_problem(make_plugin: PluginFactory, bwrap: bool) -> None:
    worker, error = _attack(
        make_plugin, "blob = bytearray(1 << 30)\nreturn len(blob)", bwrap, permissions={"memory_mb": 128}
    )
    assert error.reason == "memory"
    assert "memory limit" in str(error)
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
def test_host_environment_secrets_are_not_visible(
    make_plugin: PluginFactory, bwrap: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_SECRET_TOKEN", "tok-5up3r-s3cr3t")
    folder = make_plugin(
        NORMAL_PARSE
        + """
def attack(self, request):
    import os
    found = dict(os.environ)
    for path in (f"/proc/{os.getppid()}/environ", "/proc/1/environ"):
        try:
            found[path] = open(path, "rb").read().decode("latin-1")
        except OSError as exc:
            found[path] = repr(exc)
    return found
""",
        permissions=FAST,
    )
    worker = _worker(folder, bwrap)
    leaked = json.dumps(worker.call("parse", {"text": "attack"}))
    assert "tok-5up3r-s3cr3t" not in leaked
    assert "BROKER_SECRET_TOKEN" not in leaked
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
def test_monkeypatching_only_changes_the_worker(make_plugin: PluginFactory, bwrap: bool) -> None:
    host_dumps = json.dumps
    folder = make_plugin(
        NORMAL_PARSE
        + """
def attack(self, request):
    import builtins, json, os
    json.dumps = lambda *a, **k: "pwned"
    builtins.open = None
    os.environ["PATH"] = "/evil"
    return {"patched": True}
""",
        permissions=FAST,
    )
    worker = _worker(folder, bwrap)
    assert worker.call("parse", {"text": "attack"}) == {"patched": True}
    assert json.dumps is host_dumps
    assert json.dumps({"a": 1}) == '{"a": 1}'
    assert os.environ.get("PATH") != "/evil"
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
def test_huge_reply_is_refused_by_size(make_plugin: PluginFactory, bwrap: bool) -> None:
    worker, error = _attack(make_plugin, "return 'x' * (4 * 1024 * 1024)", bwrap, permissions={"max_message_kb": 64})
    assert error.reason == "too_large"
    _still_serving(worker)


@pytest.mark.parametrize("bwrap", MODES)
@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        pytest.param(b"\x00\x00\x00\x05hello", "bad_reply", id="malformed-frame"),
        pytest.param(b"\x7f\xff\xff\xff", "too_large", id="huge-header"),
    ],
)
def test_forged_frames_on_the_reply_pipe_are_caught(
    make_plugin: PluginFactory, bwrap: bool, garbage: bytes, reason: str
) -> None:
    worker, error = _attack(
        make_plugin,
        f"""
import os
for fd in range(3, 64):
    try:
        os.write(fd, {garbage!r})
    except OSError:
        pass
return None
""",
        bwrap,
    )
    assert error.reason == reason
    assert "killed" in str(error)
    _still_serving(worker)


def test_unencodable_reply_is_a_bad_reply(make_plugin: PluginFactory) -> None:
    worker, error = _attack(make_plugin, "return object()", False)
    assert error.reason == "bad_reply"
    _still_serving(worker)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("import os\nos._exit(7)", id="exit"),
        pytest.param("import ctypes\nctypes.string_at(0)", id="segfault"),
    ],
)
def test_crashes_are_reported_and_the_worker_restarts(make_plugin: PluginFactory, body: str) -> None:
    worker, error = _attack(make_plugin, body, False)
    assert error.reason == "crashed"
    assert "crashed" in str(error)
    _still_serving(worker)


def test_sys_exit_is_an_ordinary_plugin_error(make_plugin: PluginFactory) -> None:
    worker, error = _attack(make_plugin, "import sys\nsys.exit(0)", False)
    assert error.reason == "plugin_error"
    assert "SystemExit" in str(error)
    _still_serving(worker)


def test_import_time_code_already_runs_confined(make_plugin: PluginFactory, tmp_path: Path) -> None:
    secret = tmp_path / "read-at-import.txt"
    secret.write_text("IMPORT-SECRET")
    folder = make_plugin(NORMAL_PARSE, module_prelude=f"STOLEN = open({str(secret)!r}).read()", permissions=FAST)
    worker = _worker(folder, False)
    with pytest.raises(SandboxError) as caught:
        worker.start()
    assert caught.value.reason == "start_failed"
    assert "PermissionError" in str(caught.value)
    assert "IMPORT-SECRET" not in str(caught.value)
