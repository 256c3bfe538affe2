"""CPU time of the whole test suite, and its slowest tests (issue 9: the suite under 60 s).

Runs the README's test command (`python -m pytest`, xdist and all) with `--durations=N`, and
reports the CPU seconds (user + system) of pytest and every process it started, waited for
(`os.wait4` on the pytest process sums its waited-for children). On a shared machine the wall
time says little; CPU seconds divided by the cores is what an idle machine would take at best, with
every core busy all the time; waits (sleeps, latency, deadlines) come on top.

Usage: python bench/suite_time.py [--durations N] [PYTEST ARGS...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=int, default=10)
    args, pytest_args = parser.parse_known_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--durations={args.durations}", *pytest_args]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    slowest = re.search(r"=+ slowest \d+ durations =+\n(.*?)\n(?:=|\d+ passed|$)", text, re.S)
    summary = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    cpu = usage.ru_utime + usage.ru_stime
    print(f"test suite: {' '.join(command[1:])}")
    print(f"  exit {code}; {summary[-1].strip('= ') if summary else 'no summary line'}")
    print(f"  CPU {cpu:.1f} s (user {usage.ru_utime:.1f} s + system {usage.ru_stime:.1f} s)")
    print(f"  wall {wall:.1f} s on this machine, as loaded as it is now ({os.getloadavg()[0]:.1f})")
    print(f"  CPU / {cores} cores: {cpu / (cores or 1):.1f} s (an idle machine's wall, at best)")
    if slowest:
        print(f"  slowest {args.durations} (wall, as loaded):")
        for line in slowest.group(1).strip().splitlines():
            print(f"    {line.strip()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
