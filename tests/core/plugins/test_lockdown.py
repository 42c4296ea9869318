"""``lockdown()`` applied for real in a fresh interpreter: rlimits, Landlock and seccomp all bite.

The child runs under coverage when the test session measures coverage (the sandboxed worker itself cannot
write coverage data), so the lockdown code is measured where it actually runs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import coverage
import pytest

from signalos_core.plugins import _worker

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent("""
    import errno, importlib.util, json, os, resource, socket, sys
    import signalos_core  # noqa: F401 - lets coverage map the package folder (source_pkgs) before the by-path load
    spec = importlib.util.spec_from_file_location("signalos_core.plugins._sandboxed_worker", sys.argv[1])
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    config = json.loads(sys.argv[2])
    applied = worker.lockdown(config)
    results = {"applied": applied}

    def attempt(name, action):
        try:
            action()
            results[name] = "allowed"
        except OSError as exc:
            results[name] = errno.errorcode.get(exc.errno, str(exc.errno))
        except ValueError as exc:
            results[name] = "ValueError"

    attempt("read_outside", lambda: open(config["secret"]).read())
    attempt("read_allowed", lambda: open(config["allowed_file"]).read())
    attempt("write_data", lambda: open(os.path.join(config["write_paths"][0], "ok.txt"), "w").write("x"))
    attempt("write_outside", lambda: open(config["secret"] + ".new", "w").write("x"))
    attempt("socket", lambda: socket.socket())
    attempt("fork", lambda: os.fork())
    attempt("exec", lambda: os.execv("/bin/true", ["true"]))
    attempt("raise_nofile", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
    attempt("late_import", lambda: __import__("decimal"))
    results["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if config["network"]:
        attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX))
        attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        attempt("declared_port", lambda: socket.create_connection(("127.0.0.1", config["ports"][0]), timeout=2))
        attempt("other_port", lambda: socket.create_connection(("127.0.0.1", config["other_port"]), timeout=2))
    sys.stdout.write(json.dumps(results))
    sys.stdout.flush()
""")


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


@pytest.mark.parametrize("network", [False, True], ids=["no-network", "network"])
def test_lockdown_confines_a_fresh_interpreter(tmp_path: Path, network: bool) -> None:
    declared, other = _listener(), _listener()
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    allowed = tmp_path / "code"
    allowed.mkdir()
    (allowed / "mod.py").write_text("X = 1\n")
    data = tmp_path / "data"
    data.mkdir()
    stdlib = sysconfig.get_paths()
    read_paths = [
        sys.base_prefix,
        stdlib["stdlib"],
        stdlib["platstdlib"],
        stdlib["purelib"],
        stdlib["platlib"],
        str(allowed),
        "/usr/lib",
        "/lib",
        "/lib64",
        "/dev/null",
    ]
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    write_paths = [str(data)]
    current = coverage.Coverage.current()
    if current is not None:  # let the child record coverage next to the session's data file
        env["COVERAGE_PROCESS_START"] = str(ROOT / "pyproject.toml")
        env["COVERAGE_FILE"] = str(Path(current.config.data_file).resolve())
        write_paths.append(str(Path(env["COVERAGE_FILE"]).parent))
        read_paths.append(str(ROOT))
    config = {
        "limits": {"memory_mb": 512, "cpu_seconds": 20, "fsize_bytes": 1 << 20, "nofile": 32},
        "landlock": True,
        "seccomp": True,
        "network": network,
        "ports": [declared.getsockname()[1]],
        "other_port": other.getsockname()[1],
        "read_paths": read_paths,
        "write_paths": write_paths,
        "secret": str(secret),
        "allowed_file": str(allowed / "mod.py"),
    }
    completed = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", CHILD, _worker.__file__, json.dumps(config)],
        capture_output=True,
        env=env,
        cwd=str(ROOT),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    results = json.loads(completed.stdout)
    assert results["applied"]["seccomp"] is True
    assert results["applied"]["landlock_abi"] >= 1
    assert results["read_outside"] == "EACCES"
    assert results["write_outside"] == "EACCES"
    assert results["read_allowed"] == "allowed"
    assert results["write_data"] == "allowed"
    if network:
        assert results["socket"] == "allowed"
        assert results["unix_socket"] == "EPERM"
        assert results["raw_socket"] == "EPERM"
        assert results["declared_port"] == "allowed"
        assert results["other_port"] == "EACCES"  # Landlock ABI >= 4: TCP connect limited to declared ports
    else:
        assert results["socket"] == "EPERM"
    declared.close()
    other.close()
    assert results["fork"] == "EPERM"
    assert results["exec"] == "EPERM"
    assert results["raise_nofile"] == "ValueError"  # EPERM from seccomp, reported by CPython as ValueError
    assert results["late_import"] == "allowed"  # the stdlib stays importable after lockdown (trap 1)
    assert results["nofile"] == 32
    assert (data / "ok.txt").read_text() == "x"
    assert not Path(str(secret) + ".new").exists()
