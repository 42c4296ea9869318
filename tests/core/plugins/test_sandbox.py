"""PluginWorker behaviour beyond the hostile suite: network permission, data folder, recycling, closing."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from signalos_core.plugins import PluginWorker, SandboxError, SandboxPolicy, parse_manifest, sandbox_capabilities
from tests.core.plugins.conftest import NORMAL_PARSE, PluginFactory

MODES = [
    pytest.param(False, id="plain"),
    pytest.param(True, id="bwrap", marks=pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bwrap")),
]
CONNECT = (
    NORMAL_PARSE
    + """
def attack(self, request):
    import socket
    with socket.create_connection(("127.0.0.1", int(request["port"])), timeout=2) as conn:
        return conn.recv(16).decode()
"""
)


def _worker(folder: Path, **policy: object) -> PluginWorker:
    manifest = parse_manifest((folder / "plugin.json").read_bytes())
    settings: dict[str, object] = {"startup_timeout_s": 20.0, **policy}
    return PluginWorker(folder, manifest, policy=SandboxPolicy(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("bwrap", MODES)
def test_declared_port_is_reachable_and_others_are_not(make_plugin: PluginFactory, bwrap: bool) -> None:
    allowed, other = socket.socket(), socket.socket()
    for server in (allowed, other):
        server.bind(("127.0.0.1", 0))
        server.listen()
    port, other_port = allowed.getsockname()[1], other.getsockname()[1]
    folder = make_plugin(CONNECT, permissions={"network": [f"127.0.0.1:{port}"], "timeout_ms": 3000})
    with _worker(folder, use_bwrap=bwrap) as worker:
        worker.start()
        accepted: list[socket.socket] = []

        def serve_one() -> None:
            conn, _ = allowed.accept()
            conn.sendall(b"hello")
            accepted.append(conn)

        import threading

        thread = threading.Thread(target=serve_one)
        thread.start()
        assert worker.call("parse", {"text": "attack", "port": port}) == "hello"
        thread.join(5)
        with pytest.raises(SandboxError) as caught:
            worker.call("parse", {"text": "attack", "port": other_port})
        assert caught.value.reason == "denied"
        assert worker.call("parse", {"text": "ok"})["symbol"] == "EURUSD"
        for conn in accepted:
            conn.close()
    allowed.close()
    other.close()


def test_data_folder_must_be_given_and_bind_mounted(make_plugin: PluginFactory, tmp_path: Path) -> None:
    folder = make_plugin(
        NORMAL_PARSE
        + """
def attack(self, request):
    import os
    with open(os.path.join(os.environ["HOME"], "n.txt"), "w") as handle:
        handle.write("1")
    return os.listdir(os.environ["HOME"])
""",
        permissions={"files": "data"},
    )
    manifest = parse_manifest((folder / "plugin.json").read_bytes())
    with pytest.raises(SandboxError, match="pass data_dir"):
        PluginWorker(folder, manifest)
    data = tmp_path / "data"
    data.mkdir()
    policy = SandboxPolicy(use_bwrap=shutil.which("bwrap") is not None, startup_timeout_s=20.0)
    with PluginWorker(folder, manifest, data_dir=data, policy=policy) as worker:
        assert worker.call("parse", {"text": "attack"}) == ["n.txt"]
        assert worker.pid is not None
    assert (data / "n.txt").read_text() == "1"


def test_worker_is_recycled_before_its_cpu_budget_runs_out(make_plugin: PluginFactory) -> None:
    busy = (
        NORMAL_PARSE
        + """
def attack(self, request):
    import time
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    return {"symbol": "EURUSD"}
"""
    )
    folder = make_plugin(busy, permissions={"cpu_seconds": 1, "timeout_ms": 5000})
    with _worker(folder, use_bwrap=False, cpu_recycle_ratio=0.2) as worker:
        assert worker.call("parse", {"text": "attack"}) == {"symbol": "EURUSD"}
        assert not worker.running  # recycled after the call, not killed during it
        assert worker.call("parse", {"text": "ok"})["symbol"] == "EURUSD"
        assert worker.starts == 2


def test_closed_workers_and_oversized_requests(make_plugin: PluginFactory) -> None:
    folder = make_plugin(NORMAL_PARSE + "\ndef attack(self, request):\n    return None\n")
    worker = _worker(folder, use_bwrap=False, max_request_bytes=1000)
    with pytest.raises(SandboxError) as caught:
        worker.call("parse", {"text": "x" * 5000})
    assert caught.value.reason == "too_large"
    assert worker.call("parse", {"text": "ok"})["side"] == "buy"
    worker.close()
    assert not worker.running
    with pytest.raises(SandboxError) as caught:
        worker.call("parse", {"text": "ok"})
    assert caught.value.reason == "closed"


def test_bwrap_required_but_missing(make_plugin: PluginFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_plugin(NORMAL_PARSE + "\ndef attack(self, request):\n    return None\n")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxError, match="bubblewrap") as caught:
        _worker(folder, use_bwrap=True).start()
    assert caught.value.reason == "start_failed"
    assert sandbox_capabilities()["bwrap"] is None


def test_start_up_timeout_is_a_start_failure(make_plugin: PluginFactory) -> None:
    folder = make_plugin(NORMAL_PARSE, module_prelude="import time\ntime.sleep(30)")
    with pytest.raises(SandboxError) as caught:
        _worker(folder, use_bwrap=False, startup_timeout_s=0.5).start()
    assert caught.value.reason == "start_failed"
    assert "deadline" in str(caught.value)


def test_threads_still_work_inside_the_sandbox(make_plugin: PluginFactory) -> None:
    # seccomp allows clone() with CLONE_THREAD (and answers clone3 with ENOSYS so glibc falls back to clone).
    folder = make_plugin(
        NORMAL_PARSE
        + """
def attack(self, request):
    import threading
    results = []
    threads = [threading.Thread(target=results.append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)
"""
    )
    with _worker(folder, use_bwrap=False) as worker:
        assert worker.call("parse", {"text": "attack"}) == [0, 1, 2, 3]
