"""Signal parser throughput: messages/s and p99 latency per message on the dev corpus.

Baseline in the same run: one compiled regex pass (side words, labels and numbers) over the same texts,
i.e. roughly what a single-regex channel parser costs. Run: ``.venv/bin/python benchmarks/bench_parser.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from signalos_core.parsing import parse  # noqa: E402 - after the path setup above

CORPUS = ROOT / "tests" / "core" / "parsing" / "data" / "signals-dev.jsonl"
BASELINE = re.compile(r"(?i)\b(buy|sell|long|short)\b|\b(sl|tp\d?|stop loss|take profit|entry)\b|(\d+(?:[.,]\d+)?)")


def baseline(text: str) -> object:
    return BASELINE.findall(text)


def measure(fn: Callable[[str], object], texts: list[str], rounds: int) -> tuple[float, float, float, float]:
    """(messages per wall second, per CPU second, median us, p99 us) over ``rounds`` passes.

    Per-CPU-second throughput is what one dedicated core sustains; on a shared machine the wall-clock
    figure also counts time the process was not scheduled.
    """
    for text in texts:  # warm caches (symbol lookups, compiled regexes)
        fn(text)
    per_message: list[int] = []
    clock = time.perf_counter_ns
    start, cpu_start = clock(), time.process_time()
    for _ in range(rounds):
        for text in texts:
            t0 = clock()
            fn(text)
            per_message.append(clock() - t0)
    elapsed = (clock() - start) / 1e9
    cpu = time.process_time() - cpu_start
    per_message.sort()
    p99 = per_message[int(len(per_message) * 0.99) - 1] / 1000
    return len(per_message) / elapsed, len(per_message) / cpu, statistics.median(per_message) / 1000, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rate, cpu_rate, median, p99 = measure(parse, texts, args.rounds)
    base_rate, base_cpu_rate, base_median, base_p99 = measure(baseline, texts, args.rounds)
    print(f"corpus: {len(texts)} messages x {args.rounds} rounds, one core")
    print(
        f"parser:   {rate:>9,.0f} msg/s wall  {cpu_rate:>9,.0f} msg/s cpu  median {median:7.1f} us  p99 {p99:8.1f} us"
    )
    print(
        f"baseline: {base_rate:>9,.0f} msg/s wall  {base_cpu_rate:>9,.0f} msg/s cpu  median {base_median:7.1f} us  "
        f"p99 {base_p99:8.1f} us  (one compiled regex pass)"
    )
    print(f"ratio:    the parser costs {base_cpu_rate / cpu_rate:.1f}x the single-regex baseline (cpu)")
    print(f"goal >= 20,000 msg/s on one core: {'met' if cpu_rate >= 20_000 else 'NOT met'} ({cpu_rate:,.0f} msg/s cpu)")


if __name__ == "__main__":
    main()
