"""The product loop on the example policies, timed through the real CLI (sandbox target).

Prints: validate wall time; plan wall time (fresh sandbox) and requests per org;
apply wall time and writes; second apply writes (must be 0); re-plan wall time.
Usage: python bench/loop.py [RUNS]
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"


def cli(cwd: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rovo_reconcile", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, proc


def median(cwd: Path, runs: int, *args: str) -> float:
    return statistics.median(cli(cwd, *args)[0] for _ in range(runs))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    orgs = len(list(EXAMPLES.glob("*.yaml")))
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        base = median(cwd, runs, "--version")
        validate = median(cwd, runs, "validate", str(EXAMPLES))
        plan_times = []
        for _ in range(runs):
            shutil.rmtree(cwd / ".rovo-reconcile", ignore_errors=True)
            seconds, proc = cli(cwd, "plan", str(EXAMPLES))
            plan_times.append(seconds)
        requests = int(re.search(r"with (\d+) requests", proc.stderr).group(1))  # type: ignore[union-attr]
        shutil.rmtree(cwd / ".rovo-reconcile", ignore_errors=True)
        apply_s, applied = cli(cwd, "apply", str(EXAMPLES), "--yes")
        writes = re.search(r"(\d+) writes? sent", applied.stdout).group(1)  # type: ignore[union-attr]
        again_s, again = cli(cwd, "apply", str(EXAMPLES), "--yes")
        second = (
            "0"
            if "No changes" in again.stdout
            else re.search(r"(\d+) writes? sent", again.stdout).group(1)
        )  # type: ignore[union-attr]
        replan = median(cwd, runs, "plan", str(EXAMPLES))
    print(f"examples: {orgs} orgs; medians of {runs} runs; each run is a fresh process")
    print(f"rovo-reconcile --version      {base:6.2f} s")
    print(f"validate examples             {validate:6.2f} s")
    print(
        f"plan (fresh sandbox)          {statistics.median(plan_times):6.2f} s   {requests / orgs:.1f} requests per org"
    )
    print(f"apply (fresh sandbox)         {apply_s:6.2f} s   {writes} writes")
    print(f"second apply                  {again_s:6.2f} s   {second} writes")
    print(f"plan (after apply, no change) {replan:6.2f} s")


if __name__ == "__main__":
    main()
