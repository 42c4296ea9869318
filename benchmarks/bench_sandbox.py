"""Round-trip cost of a sandboxed plugin call vs an in-process call, measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_sandbox.py [--calls N] [--rounds R]``

Baselines: a direct method call, and a pluggy hook call (pluggy ships with pytest; skipped if missing).
Sandboxed: the persistent worker (rlimits + Landlock + seccomp), without and with bubblewrap, for a no-op
echo of a small payload and for the example gold-format parser; plus the typed ``PluginRuntime.parse`` path
(contract validation included) and the worker start-up time. Medians over rounds, microseconds per call.
Goal: a sandboxed round trip of a small payload <= 50 us.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signalos_core.plugins import (  # noqa: E402 - after the path tweak so the checkout is importable
    Keyring,
    ParseRequest,
    PluginRegistry,
    PluginRuntime,
    PluginWorker,
    SandboxPolicy,
    SigningKey,
    build_package,
    parse_manifest,
    sandbox_capabilities,
)

EXAMPLE = ROOT / "examples" / "plugins" / "gold-format"
SMALL = {"text": "XAUUSD BUY @ 2350.5\nSL: 2340\nTP1: 2360"}


def _measure(paths: dict[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Median and best microseconds per call of every path; rounds interleave the paths so that load from
    other processes on a shared machine hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, function in paths.items():
            started = time.perf_counter()
            for _ in range(calls):
                function()
            samples[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: (statistics.median(values), min(values)) for name, values in samples.items()}


def _echo(request: Any) -> Any:
    return request


def _load_example() -> Any:
    sys.path.insert(0, str(EXAMPLE))
    import gold_format  # type: ignore[import-not-found]

    return gold_format.GoldFormat()


def _pluggy_call(plugin: Any) -> Callable[[], Any] | None:
    try:
        import pluggy
    except ImportError:
        return None
    spec, impl = pluggy.HookspecMarker("bench"), pluggy.HookimplMarker("bench")

    class Spec:
        @spec(firstresult=True)
        def parse(self, request: Any) -> Any: ...

    class Impl:
        @impl
        def parse(self, request: Any) -> Any:
            return plugin.parse(request)

    manager = pluggy.PluginManager("bench")
    manager.add_hookspecs(Spec)
    manager.register(Impl())
    return lambda: manager.hook.parse(request=SMALL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    calls, rounds = args.calls, args.rounds

    print(f"sandbox capabilities: {sandbox_capabilities()}")
    plugin = _load_example()
    paths: dict[str, Callable[[], Any]] = {
        "in-process direct: echo": lambda: _echo(SMALL),
        "in-process direct: gold parse": lambda: plugin.parse(SMALL),
    }
    hook = _pluggy_call(plugin)
    if hook is not None:
        paths["in-process pluggy: gold parse"] = hook

    manifest = parse_manifest((EXAMPLE / "plugin.json").read_bytes())
    modes = [("plain", False)] + ([("bwrap", True)] if shutil.which("bwrap") else [])
    workers = []
    for label, bwrap in modes:
        starts = []
        for _ in range(rounds):
            with PluginWorker(EXAMPLE, manifest, policy=SandboxPolicy(use_bwrap=bwrap)) as probe:
                started = time.perf_counter()
                probe.start()
                starts.append((time.perf_counter() - started) * 1e3)
        print(f"worker start-up ({label}): median {statistics.median(starts):.1f} ms over {rounds}")
        worker = PluginWorker(EXAMPLE, manifest, policy=SandboxPolicy(use_bwrap=bwrap))
        worker.start()
        workers.append(worker)
        paths[f"sandbox {label}: echo small payload"] = lambda w=worker: w.call("ping", SMALL)
        paths[f"sandbox {label}: gold parse"] = lambda w=worker: w.call("parse", SMALL)

    key = SigningKey.generate("acme")
    with tempfile.TemporaryDirectory() as scratch:
        registry = PluginRegistry(scratch, Keyring([key.public()]))
        registry.install(build_package(EXAMPLE, key), user_id="u", account_id="a")
        with PluginRuntime(registry, policy=SandboxPolicy(use_bwrap=False)) as runtime:
            runtime.activate("u", "a", "acme.gold-format")
            request = ParseRequest(text=SMALL["text"])
            paths["runtime typed parse (plain, validated)"] = lambda: runtime.parse(
                "u", "a", "acme.gold-format", request
            )
            results = _measure(paths, calls, rounds)
        registry.close()
    for worker in workers:
        worker.close()

    baseline = results["in-process direct: gold parse"][0]
    print(f"\n{'path':<42} {'median us':>10} {'best us':>9} {'x direct parse':>15}")
    for name, (median, best) in results.items():
        print(f"{name:<42} {median:>10.2f} {best:>9.2f} {median / baseline:>15.1f}")
    echo = results["sandbox plain: echo small payload"][0]
    verdict = "MET" if echo <= 50 else "MISSED"
    print(f"\ngoal <= 50 us per sandboxed small-payload round trip: {verdict} (median {echo:.1f} us)")


if __name__ == "__main__":
    main()
