"""Start-up time of `rovo-reconcile --help` against a bare `python3 -c pass`.

Target (issue 2): under 5x. Heavy libraries are imported lazily inside commands.
Usage: python bench/startup.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_seconds(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    script = str(BIN / "rovo-reconcile")
    median_seconds([script, "--help"], 3)  # warm the page cache
    base = median_seconds([sys.executable, "-c", "pass"], runs)
    help_ = median_seconds([script, "--help"], runs)
    module = median_seconds([sys.executable, "-m", "rovo_reconcile", "--help"], runs)
    print(f"python -c pass              {base * 1000:7.1f} ms")
    print(f"rovo-reconcile --help       {help_ * 1000:7.1f} ms  ({help_ / base:.1f}x, target < 5x)")
    print(f"python -m rovo_reconcile -h {module * 1000:7.1f} ms  ({module / base:.1f}x)")


if __name__ == "__main__":
    main()
