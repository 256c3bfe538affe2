"""Shared fixtures: the repository layout and a runner for the real CLI in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import warm_cli as warm_cli_module
from .emulator_fixture import EmulatorPool
from .warm_cli import WarmCli

pytest_plugins = ["tests.fake_github"]
"""The fake GitHub API's fixtures (`github_server`, `fake_github`, `github_client`) for every test."""

ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("PYTHONDONTWRITEBYTECODE"):
    # Set on some CI images. Without bytecode caches every worker rewrites the asserts of
    # every test module (~1.5 s a worker) and every CLI process compiles the package anew
    # (~0.07 s a call). Keep the caches under .pytest_cache instead of beside the sources,
    # for this process and every process a test starts.
    _PYCACHE = str(ROOT / ".pytest_cache" / "pycache")
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = _PYCACHE
    sys.dont_write_bytecode = False
    sys.pycache_prefix = _PYCACHE
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


def cold_cli() -> bool:
    """ROVO_TEST_COLD_CLI=1: every `cli` call starts a new interpreter (see tests/warm_cli.py)."""
    return os.environ.get("ROVO_TEST_COLD_CLI", "") not in ("", "0")


@pytest.fixture(scope="session", autouse=True)
def warm_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmCli | None]:
    """This worker's warm CLI server, or None when every call is to start cold.

    Autouse, so that `start_emulator` finds it (`warm_cli.shared`) in any test.
    """
    if cold_cli():
        yield None
        return
    server = WarmCli(tmp_path_factory.mktemp("warm-cli"))
    warm_cli_module._SHARED.append(server)
    try:
        yield server
    finally:
        warm_cli_module._SHARED.clear()
        server.close()


@pytest.fixture
def cli(tmp_path: Path, warm_cli: WarmCli | None, request: pytest.FixtureRequest) -> CliRunner:
    """Run `python -m rovo_reconcile ARGS...` as its own process, with its own argv,
    environment, directory, stdio and exit status.

    The process is forked from this worker's warm CLI server, which has imported the package
    and nothing else (tests/warm_cli.py), when it can be; else it starts cold.
    """

    warm = None if request.node.get_closest_marker("cold_cli") else warm_cli

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        full_env.pop("ROVO_RECONCILE_DEBUG", None)
        if warm is not None and warm.serves(full_env):
            code, out, err = warm.run(list(args), cwd=cwd or tmp_path, env=full_env, timeout=120)
            return Result(code, out, err)
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
def emulator_pool(
    tmp_path_factory: pytest.TempPathFactory, warm_cli: WarmCli | None
) -> Iterator[EmulatorPool]:
    """Emulators shared by this process's tests (see `EmulatorPool`); stopped at the end,
    before the warm CLI server that may have started them."""
    pool = EmulatorPool(tmp_path_factory.mktemp("shared-emulators"))
    try:
        yield pool
    finally:
        pool.close()
