"""Shared fixtures: the repository layout and a runner for the real CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .emulator_fixture import EmulatorPool

pytest_plugins = ["tests.fake_github"]
"""The fake GitHub API's fixtures (`github_server`, `fake_github`, `github_client`) for every test."""

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "policies"
TODAY = "2026-11-26"
"""Tests pin the date expiry checks compare with, so they mean the same thing next year."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: half as many workers again as cores (3 on 2 cores), not one per core.

    A quarter of the suite's wall time on 2 workers was a core waiting: on a child's
    latency, a deadline, a SIGKILL timing, a real backoff. A third worker runs while another
    waits, for ~3 s of CPU to start and collect. PYTEST_XDIST_AUTO_NUM_WORKERS still decides
    when set (xdist's own hook reads it).
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(2, (cores or 1) * 3 // 2)


@pytest.fixture(autouse=True)
def _pinned_today(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROVO_RECONCILE_NOW", TODAY)
    # Apply's leases live per user, outside the checkout: each test gets its own.
    monkeypatch.setenv("ROVO_RECONCILE_LEASE_DIR", str(tmp_path / "leases"))
    # CI runners set CI=true, which makes apply refuse the default sandbox; tests that
    # want that behaviour set it themselves.
    monkeypatch.delenv("CI", raising=False)


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


CliRunner = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """Run `python -m rovo_reconcile ARGS...` in a subprocess, as a user would."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        full_env.pop("ROVO_RECONCILE_DEBUG", None)
        proc = subprocess.run(
            [sys.executable, "-m", "rovo_reconcile", *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def emulator_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorPool]:
    """Emulators shared by this process's tests (see `EmulatorPool`); stopped at the end."""
    pool = EmulatorPool(tmp_path_factory.mktemp("shared-emulators"))
    try:
        yield pool
    finally:
        pool.close()
