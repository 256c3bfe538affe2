"""The warm CLI server's children are the processes a cold `python -m rovo_reconcile` makes.

Most end-to-end tests run the CLI as a child of tests/warm_cli.py's server. These tests hold
what such a child prints and the code it exits with to a new interpreter's, command for
command, so a difference between the two shows here and not as a test passing for the wrong
reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import EXAMPLES, cold_cli
from .warm_cli import WarmCli, WarmProcess, interpreter_env

needs_warm = pytest.mark.skipif(cold_cli(), reason="ROVO_TEST_COLD_CLI=1: no warm server")

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


@needs_warm
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


@needs_warm
def test_a_warm_child_reads_its_own_environment_and_directory(
    warm_cli: WarmCli, tmp_path: Path
) -> None:
    env = {**os.environ, "NO_COLOR": "1", "ROVO_RECONCILE_TARGET": "no-such-target"}
    code, out, err = warm_cli.run(["show", "--org", "o1"], cwd=tmp_path, env=env, timeout=60)
    assert (code, out) == (64, "")
    assert "no-such-target" in err
    code, _, _ = warm_cli.run(["plan", "p.yaml"], cwd=tmp_path, env=env, timeout=60)
    assert code == 64  # p.yaml is looked for in tmp_path, not in the server's directory


@needs_warm
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


@needs_warm
def test_a_warm_child_past_its_timeout_is_killed(warm_cli: WarmCli, tmp_path: Path) -> None:
    args = ["emulator", "serve", "--port", "0", "--state", str(tmp_path / "e.db")]
    with pytest.raises(subprocess.TimeoutExpired):
        warm_cli.run(args, cwd=tmp_path, env={**os.environ}, timeout=1.0)


@needs_warm
def test_what_the_interpreter_reads_at_start_sends_a_call_cold(warm_cli: WarmCli) -> None:
    assert warm_cli.serves(dict(os.environ))
    for name in ("PYTHONHASHSEED", "PYTHONIOENCODING", "LC_ALL", "LANG", "PYTHONWARNINGS"):
        env = {**os.environ, name: "1" if name != "LANG" else "C"}
        if env != dict(os.environ):
            assert interpreter_env(env) != interpreter_env(os.environ)
            assert not warm_cli.serves(env)


_IMPORT_GUARD = r"""
import datetime, importlib, importlib.util, os, pathlib, pkgutil, sys, time
from collections.abc import MutableMapping

PACKAGE = sys.argv[1]
sys.path[:0] = sys.argv[2:]
ROOT = os.path.dirname(importlib.util.find_spec(PACKAGE).origin)
reads = []


PLUMBING = ("<string>", os.__file__, pathlib.__file__, MutableMapping.get.__code__.co_filename)


def note(what):
    # Record a read whose reader, past this guard, `os` and Mapping's methods, is ours.
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in PLUMBING:
        frame = frame.f_back
    if frame is not None and frame.f_code.co_filename.startswith(ROOT):
        reads.append(f"{what} at {frame.f_code.co_filename}:{frame.f_lineno}")


class Environ(MutableMapping):
    def __init__(self, real):
        self.real = real
    def __getitem__(self, key):
        note(f"os.environ[{key!r}]")
        return self.real[key]
    def __setitem__(self, key, value):
        note(f"os.environ[{key!r}] =")
        self.real[key] = value
    def __delitem__(self, key):
        note(f"del os.environ[{key!r}]")
        del self.real[key]
    def __iter__(self):
        note("iter(os.environ)")
        return iter(self.real)
    def __len__(self):
        return len(self.real)
    def copy(self):
        note("os.environ.copy()")
        return dict(self.real)


class Argv(list):
    def __getitem__(self, index):
        note("sys.argv")
        return super().__getitem__(index)
    def __iter__(self):
        note("sys.argv")
        return super().__iter__()


def watched(name, real):
    def call(*args, **kwargs):
        note(name)
        return real(*args, **kwargs)
    return call


class Date(datetime.date):
    @classmethod
    def today(cls):
        note("date.today()")
        return super().today()


class DateTime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        note("datetime.now()")
        return super().now(tz)


os.environ = Environ(os.environ)
sys.argv = Argv(sys.argv)
os.getcwd = watched("os.getcwd()", os.getcwd)
time.time = watched("time.time()", time.time)
time.time_ns = watched("time.time_ns()", time.time_ns)
datetime.date, datetime.datetime = Date, DateTime

package = importlib.import_module(PACKAGE)
for module in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
print("\n".join(reads))
"""


def _import_guard(package: str, *path: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_GUARD, package, *path],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def test_no_module_reads_the_process_while_it_is_imported() -> None:
    """What a warm child skips is the import: safe only while importing reads nothing that
    differs between processes (environment, directory, arguments, clock)."""
    assert _import_guard("rovo_reconcile") == ""


def test_the_import_guard_sees_a_read(tmp_path: Path) -> None:
    """The guard above can fail: a module that reads the environment or the directory while
    it is imported is caught, at its line."""
    package = tmp_path / "probe"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "reader.py").write_text(
        'import os, pathlib\nHOME = os.environ.get("HOME")\nHERE = pathlib.Path.cwd()\n',
        encoding="utf-8",
    )
    reads = _import_guard("probe", str(tmp_path)).splitlines()
    assert reads == [
        f"os.environ['HOME'] at {package / 'reader.py'}:2",
        f"os.getcwd() at {package / 'reader.py'}:3",
    ]


def _emulator(server: WarmCli, tmp_path: Path, name: str) -> WarmProcess:
    """`emulator serve` forked from `server`, once it listens."""
    read, write = os.pipe()
    with (tmp_path / f"{name}.stderr").open("w") as stderr:
        child = server.spawn(
            ["emulator", "serve", "--port", "0", "--state", str(tmp_path / f"{name}.db")],
            cwd=tmp_path,
            env={**os.environ},
            stdout=write,
            stderr=stderr.fileno(),
        )
    os.close(write)
    with open(read, encoding="utf-8") as out:
        assert out.readline().startswith("rovo-reconcile emulator listening on http://")
    return child


def _gone(pid: int, timeout: float) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaps has) within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@needs_warm
def test_a_child_whose_caller_went_away_is_killed_and_the_server_keeps_serving(
    tmp_path: Path,
) -> None:
    """A caller that closes its connection (a test failing before it waits) can no longer
    stop its child: the server kills it, and reaping it later does not end the server."""
    server = WarmCli(tmp_path)
    try:
        child = _emulator(server, tmp_path, "orphan")
        child._sock.close()
        assert _gone(child.pid, 10), "the child outlived its caller"
        code, out, _ = server.run(["--version"], cwd=tmp_path, env={**os.environ}, timeout=60)
        assert (code, out.startswith("rovo-reconcile, version")) == (0, True)
        assert server.serves(dict(os.environ))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        server.close()


@needs_warm
def test_a_caller_learns_its_server_is_gone_while_other_children_run(tmp_path: Path) -> None:
    """A child holds its own stdio and nothing of the server's: not the connections of the
    children before it, which kept their callers waiting on a server that had died."""
    server = WarmCli(tmp_path)
    first = second = None
    try:
        first = _emulator(server, tmp_path, "first")
        second = _emulator(server, tmp_path, "second")
        server._process.kill()
        with pytest.raises(ConnectionError):
            first.wait(10)
    finally:
        for child in (first, second):
            if child is not None:
                child._sock.close()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
        server.close()


_WORKER = r"""
import os, sys, time
from pathlib import Path
from tests.warm_cli import WarmCli
server = WarmCli(Path(sys.argv[1]))
read, write = os.pipe()
child = server.spawn(
    ["emulator", "serve", "--port", "0", "--state", sys.argv[1] + "/e.db"],
    cwd=Path(sys.argv[1]), env=dict(os.environ), stdout=write, stderr=2,
)
os.close(write)
os.read(read, 1)
print(server._process.pid, child.pid, flush=True)
time.sleep(600)
"""


@needs_warm
def test_the_server_and_its_children_end_with_the_pytest_worker(tmp_path: Path) -> None:
    """A pytest worker that dies (a crash, xdist's SIGKILL) leaves no server behind, nor the
    emulators it started: nothing else would ever stop them."""
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    pids = [int(pid) for pid in worker.stdout.readline().split()]
    worker.kill()
    worker.wait()
    worker.stdout.close()
    try:
        assert len(pids) == 2
        assert [_gone(pid, 10) for pid in pids] == [True, True]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@needs_warm
def test_a_deep_temporary_directory_still_gets_a_server(tmp_path: Path) -> None:
    """A Unix socket's path has at most 107 bytes: under a deep TMPDIR the server listens in
    a short directory of its own instead of failing to start."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = WarmCli(deep)
    try:
        code, out, _ = server.run(["--version"], cwd=tmp_path, env=dict(os.environ), timeout=60)
        assert (code, out.startswith("rovo-reconcile, version")) == (0, True)
    finally:
        server.close()
