"""The warm CLI server's children are the processes a cold `python -m rovo_reconcile` makes.

Most end-to-end tests run the CLI as a child of tests/warm_cli.py's server. These tests hold
what such a child prints and the code it exits with to a new interpreter's, command for
command, so a difference between the two shows here and not as a test passing for the wrong
reason elsewhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLES, cold_cli
from .warm_cli import WarmCli, interpreter_env

pytestmark = pytest.mark.skipif(cold_cli(), reason="ROVO_TEST_COLD_CLI=1: no warm server")

BROKEN = """apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org: {id: 3f9c2a71-8d4e-4b6a-a1c5-7e20d9b4f638}
mcp:
  domains:
    - pattern: https://*.com/**
"""

COMMANDS: list[tuple[str, ...]] = [
    ("--version",),
    ("--help",),
    ("plan", "--help"),
    ("validate", str(EXAMPLES / "enterprise.yaml")),
    ("validate", "--format", "json", str(EXAMPLES / "small-team.yaml")),
    ("validate", "broken.yaml"),
    ("validate", "missing.yaml"),
    ("plan", str(EXAMPLES / "small-team.yaml")),
    ("plan", "--format", "json", str(EXAMPLES / "locked-down.yaml")),
    ("apply", str(EXAMPLES / "small-team.yaml")),
    ("apply", "--yes", str(EXAMPLES / "small-team.yaml")),
    ("drift", str(EXAMPLES / "enterprise.yaml")),
    ("show", "--org", "3f9c2a71-8d4e-4b6a-a1c5-7e20d9b4f638"),
    ("schema",),
    ("completion", "bash"),
    ("no-such-command",),
]


def _cold(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rovo_reconcile", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_warm_child_prints_and_exits_as_a_cold_process(
    args: tuple[str, ...], warm_cli: WarmCli, tmp_path: Path
) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    results = []
    for name, run in (("cold", _cold), ("warm", None)):
        cwd = tmp_path / name  # each its own sandbox file, made the same way
        cwd.mkdir()
        (cwd / "broken.yaml").write_text(BROKEN, encoding="utf-8")
        if run is None:
            results.append(warm_cli.run(list(args), cwd=cwd, env=env, timeout=120))
        else:
            results.append(run(args, cwd, env))
    cold, warm = results
    assert warm == cold


def test_a_warm_child_reads_its_own_environment_and_directory(
    warm_cli: WarmCli, tmp_path: Path
) -> None:
    env = {**os.environ, "NO_COLOR": "1", "ROVO_RECONCILE_TARGET": "no-such-target"}
    code, out, err = warm_cli.run(["show", "--org", "o1"], cwd=tmp_path, env=env, timeout=60)
    assert (code, out) == (64, "")
    assert "no-such-target" in err
    code, _, _ = warm_cli.run(["plan", "p.yaml"], cwd=tmp_path, env=env, timeout=60)
    assert code == 64  # p.yaml is looked for in tmp_path, not in the server's directory


def test_signals_reach_a_warm_child_and_its_status_comes_back(
    warm_cli: WarmCli, tmp_path: Path
) -> None:
    env = {**os.environ}
    for sig, expected in ((signal.SIGTERM, 0), (signal.SIGKILL, -signal.SIGKILL)):
        read, write = os.pipe()
        err = tmp_path / f"{sig.name}.stderr"
        with err.open("w") as stderr:
            child = warm_cli.spawn(
                ["emulator", "serve", "--port", "0", "--state", str(tmp_path / "e.db")],
                cwd=tmp_path,
                env=env,
                stdout=write,
                stderr=stderr.fileno(),
            )
        os.close(write)
        with open(read, encoding="utf-8") as out:
            assert out.readline().startswith("rovo-reconcile emulator listening on http://")
            assert child.poll() is None
            child.send_signal(sig)
            assert child.wait(30) == expected, err.read_text()


def test_a_warm_child_past_its_timeout_is_killed(warm_cli: WarmCli, tmp_path: Path) -> None:
    args = ["emulator", "serve", "--port", "0", "--state", str(tmp_path / "e.db")]
    with pytest.raises(subprocess.TimeoutExpired):
        warm_cli.run(args, cwd=tmp_path, env={**os.environ}, timeout=1.0)


def test_what_the_interpreter_reads_at_start_sends_a_call_cold(warm_cli: WarmCli) -> None:
    assert warm_cli.serves(dict(os.environ))
    for name in ("PYTHONHASHSEED", "PYTHONIOENCODING", "LC_ALL", "LANG", "PYTHONWARNINGS"):
        env = {**os.environ, name: "1" if name != "LANG" else "C"}
        if env != dict(os.environ):
            assert interpreter_env(env) != interpreter_env(os.environ)
            assert not warm_cli.serves(env)
