"""Start the Admin API emulator in a subprocess on a real loopback socket, for tests.

    with start_emulator(tmp_path, "--settle-ms", "50") as emu:
        httpx.get(f"{emu.url}/admin/control/v1/orgs/o1/policies")

The server picks a free port (`--port 0`) and the helper learns it from the
ready line on stdout. On exit the server gets SIGTERM and must exit 0, with no
traceback on stderr. A plain module, not a conftest, so any test file can
import it.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Emulator", "admin_emulator", "start_emulator", "ui_adds_domain", "writes"]

_READY = re.compile(r"rovo-reconcile emulator listening on (http://\S+) \(state (.+)\)")
_LAUNCH = "import sys; from rovo_reconcile.emulator.command import emulator; emulator(sys.argv[1:])"


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[str]
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
    command = [sys.executable, "-c", _LAUNCH, "serve", "--port", "0", "--state", str(state), *args]
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
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


def _read_ready_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"the emulator printed nothing within {timeout} s")
    return process.stdout.readline()


def admin_emulator(tmp_path: Path, key: str) -> AbstractContextManager[Emulator]:
    """An emulator that settles at once, answers 429s with no wait and takes `key` for writes."""
    return start_emulator(
        tmp_path, "--settle-ms", "0", "--api-key", f"{key}:write", "--retry-after", "0"
    )


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
