"""Start the Admin API emulator in a subprocess on a real loopback socket, for tests.

    with start_emulator(tmp_path, "--settle-ms", "50") as emu:
        httpx.get(f"{emu.url}/admin/control/v1/orgs/o1/policies")

The server picks a free port (`--port 0`) and the helper learns it from the
ready line on stdout. On exit the server gets SIGTERM and must exit 0, with no
traceback on stderr. A plain module, not a conftest, so any test file can
import it.

Most end-to-end tests need only a plain emulator with a fresh state: they take one from
`EmulatorPool` (the `emulator_pool` fixture), which starts one server per set of flags in each
pytest process and wipes its state file before every test, instead of starting ~0.2 s of
CPU and half a second of wall time per test.
"""

from __future__ import annotations

import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import warm_cli

__all__ = [
    "ADMIN_KEY",
    "Emulator",
    "EmulatorPool",
    "admin_emulator",
    "admin_flags",
    "start_emulator",
    "ui_adds_domain",
    "writes",
]

_READY = re.compile(r"rovo-reconcile emulator listening on (http://\S+) \(state (.+)\)")


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[str] | warm_cli.WarmProcess
    state: Path
    stderr_path: Path
    ready_line: str

    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` (if still running), wait, and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextmanager
def start_emulator(
    tmp_path: Path,
    *args: str,
    state: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Iterator[Emulator]:
    """Run `emulator serve --port 0 --state STATE ARGS...`; yields once it listens."""
    state = state or tmp_path / "emulator.db"
    stderr_path = tmp_path / f"emulator-{time.monotonic_ns()}.stderr"
    # The user's entry point, `rovo-reconcile emulator serve`: its exit, too, skips the
    # interpreter's exit-time collections (cli.main), ~0.03 s of CPU per server.
    command = [sys.executable, "-m", "rovo_reconcile", "emulator", "serve", "--port", "0"]
    command += ["--state", str(state), *args]
    full_env = {**os.environ, **(env or {})}
    warm = warm_cli.shared(full_env)
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process: subprocess.Popen[str] | warm_cli.WarmProcess
        if warm is None:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=full_env,
            )
        else:
            # Forked from the worker's warm CLI server (tests/warm_cli.py): the same
            # `python -m rovo_reconcile emulator serve`, without the interpreter's start-up.
            read, write = os.pipe()
            try:
                process = warm.spawn(
                    command[3:], cwd=Path.cwd(), env=full_env, stdout=write, stderr=stderr.fileno()
                )
            finally:
                os.close(write)
            process.stdout = open(read, encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        line = _read_ready_line(process, timeout)
        match = _READY.fullmatch(line.rstrip("\n"))
        if match is None:
            raise RuntimeError(
                f"the emulator did not start: stdout {line!r}, stderr:\n"
                + stderr_path.read_text("utf-8", errors="replace")
            )
        emulator = Emulator(match.group(1), process, state, stderr_path, line.rstrip("\n"))
        yield emulator
        code = emulator.stop()
        assert code == 0, f"the emulator exited with {code}:\n{emulator.stderr()}"
        assert "Traceback" not in emulator.stderr(), emulator.stderr()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _read_ready_line(process: subprocess.Popen[str] | warm_cli.WarmProcess, timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"the emulator printed nothing within {timeout} s")
    return process.stdout.readline()


ADMIN_KEY = "admin-key-of-the-shared-emulators"
"""A write key for `admin_flags` when a test file needs no key of its own: the files that take
it share one pooled server per worker instead of one each."""


def admin_emulator(tmp_path: Path, key: str) -> AbstractContextManager[Emulator]:
    """An emulator that settles at once, answers 429s with no wait and takes `key` for writes."""
    return start_emulator(tmp_path, *admin_flags(key))


def admin_flags(key: str) -> tuple[str, ...]:
    """The flags of `admin_emulator`."""
    return ("--settle-ms", "0", "--api-key", f"{key}:write", "--retry-after", "0")


class EmulatorPool:
    """Emulators shared by the tests of one pytest process, one per set of flags.

    `fresh(*flags)` yields the server for those flags as a newly started one would look: its
    state file holds everything the server keeps between requests (orgs, policies, domains,
    request counters, write log), and `_wipe` empties it; in memory the server keeps only
    the orgs it has seen, which the wipe creates again, and, with the flags refused here,
    fault draws and a rate window. Write counts start from zero. After the test, the server
    must still run and have printed no traceback; at the end of the session it must exit 0
    on SIGTERM, as every emulator a test starts must.

    Flags with a fault rate, a rate limit or a seed keep state in the process: start those
    per test with `start_emulator`, as tests that stop or signal their server must.
    """

    _IN_MEMORY = ("--fail-rate", "--drop-rate", "--apply-fail-rate", "--rate-limit", "--seed")

    def __init__(self, root: Path) -> None:
        self._root = root
        self._stack = ExitStack()
        self._servers: dict[tuple[str, ...], Emulator] = {}

    @contextmanager
    def fresh(self, *flags: str) -> Iterator[Emulator]:
        if any(flag in self._IN_MEMORY for flag in flags) or "--state" in flags:
            raise ValueError(f"not a shareable emulator: {flags}")
        emu = self._servers.get(flags)
        if emu is None:
            folder = self._root / f"emulator-{len(self._servers)}"
            folder.mkdir()
            emu = self._stack.enter_context(start_emulator(folder, *flags))
            self._servers[flags] = emu
        assert emu.process.poll() is None, f"the shared emulator died:\n{emu.stderr()}"
        _wipe(emu.state)
        seen = len(emu.stderr())
        yield emu
        assert emu.process.poll() is None, f"the emulator died:\n{emu.stderr()[seen:]}"
        assert "Traceback" not in emu.stderr()[seen:], emu.stderr()[seen:]

    def close(self) -> None:
        """Stop every server: each must exit 0 with no traceback."""
        self._stack.close()


def _wipe(state: Path) -> None:
    """Return an emulator's state file to what a new server shows.

    Every table is emptied; then each org the server had is created again as the server
    creates one on first sight (its default workspaces and MCP settings, through the
    emulator's own `Store.ensure_org`): the server remembers the orgs it has seen and never
    looks them up again, so they must exist. Over the API an org that exists and one the
    first request creates are the same.
    """
    from rovo_reconcile.emulator.store import Store

    with closing(sqlite3.connect(state, timeout=30, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        orgs = [org for (org,) in conn.execute("SELECT id FROM orgs ORDER BY rowid")]
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        for (table,) in tables:
            conn.execute(f'DELETE FROM "{table}"')
        conn.execute("COMMIT")
    store = Store(state)
    try:
        for org in orgs:
            store.ensure_org(org, time.time_ns() // 1_000_000)
    finally:
        store.close()


def writes(emu: Emulator) -> int:
    """How many writes the emulator has served (its own count, not the client's)."""
    import httpx

    return int(httpx.get(f"{emu.url}/_emulator/stats").json()["writes"])


def ui_adds_domain(emu: Emulator, key: str, org: str, pattern: str) -> None:
    """A colleague adds an MCP domain in Atlassian Administration, behind the tool's back."""
    import httpx

    httpx.post(
        f"{emu.url}/admin/control/v1/orgs/{org}/rovo-mcp/domains",
        json={"data": {"type": "rovo-mcp-domain", "attributes": {"pattern": pattern}}},
        headers={"Authorization": f"Bearer {key}"},
    ).raise_for_status()
