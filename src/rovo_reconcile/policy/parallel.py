"""Checking many policy files on every core, when that is faster than one.

A worker is a fork of this process, so it starts with every module already imported; it
checks a run of files and sends back their problems and what the caller keeps of each policy:
org ids for `validate`, packed policies for plan, apply and drift (1.9 MB pickled for 100 orgs,
~30 ms each way). Models with their source marks (12.8 MB, 2.5 s) cost more than a second
core saves (bench/README.md, "validate"): a caller that keeps whole models loads in one process.

Below `PARALLEL_BYTES` of policy text (~10 orgs of 22 KB) forking costs about what it saves:
2 workers took 1.35x one process's time at 0.11 MB, 0.74x at 0.22 MB, 0.52x at 2.3 MB on
2 cores (bench/validate_scale.py; bench/README.md, "validate on every core").
ROVO_RECONCILE_JOBS=N sets the number of workers (1: never fork).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["PARALLEL_BYTES", "Runs", "map_in_workers", "split_work"]

_T = TypeVar("_T")

PARALLEL_BYTES = 200_000
"""Policy text under which the files are checked in this process alone."""

CHUNKS_PER_WORKER = 4
"""Runs of files per worker: small enough that a worker done early takes another."""


class Runs(list[list[Path]]):
    """Runs of files, and how many workers check them: fewer files than `CHUNKS_PER_WORKER`
    runs a worker make a run of each file, so the count of runs does not tell."""

    def __init__(self, runs: list[list[Path]], workers: int) -> None:
        super().__init__(runs)
        self.workers = workers


def split_work(files: Sequence[Path], jobs: int | None = None) -> Runs:
    """The files in runs, in order: one run when they are checked here, else a few a worker."""
    workers = _workers(files, jobs)
    if workers < 2:
        return Runs([list(files)], 1)
    count = min(len(files), workers * CHUNKS_PER_WORKER)
    size, extra = divmod(len(files), count)
    runs, start = Runs([], workers), 0
    for index in range(count):
        end = start + size + (index < extra)
        runs.append(list(files[start:end]))
        start = end
    return runs


def map_in_workers(work: Callable[[list[Path]], _T], runs: Runs) -> Iterator[_T]:
    """`work` of each run, in order: in `runs.workers` forked workers when there are several
    runs."""
    if len(runs) < 2:
        yield from map(work, runs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(runs.workers, len(runs))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(work, runs)


def _workers(files: Sequence[Path], jobs: int | None) -> int:
    if jobs is None:
        jobs = _jobs_from_env()
    if jobs is not None:  # asked for: Linux is enough (the CLI has no other thread)
        return min(jobs, len(files)) if sys.platform == "linux" else 1
    if not _can_fork() or len(files) < 2:
        return 1
    if sum(_size(path) for path in files) < PARALLEL_BYTES:
        return 1
    return min(_cores(), len(files))


def _jobs_from_env() -> int | None:
    from rovo_reconcile.errors import UsageError

    text = os.environ.get("ROVO_RECONCILE_JOBS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"ROVO_RECONCILE_JOBS={text!r} is not a number of workers (1 or more)")
    return int(text) if _can_fork() else 1


def _can_fork() -> bool:
    """Linux, and no other thread (a fork copies only the calling one)."""
    return sys.platform == "linux" and threading.active_count() == 1


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the check reports it
