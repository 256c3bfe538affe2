"""The journal is a record of what happened: SIGKILL apply mid-run, rerun to convergence, and
every write the emulator saw has an intent line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from rovo_reconcile.errors import EXIT_OK

from .apply_helpers import policy_file
from .emulator_fixture import start_emulator

_LISTS = "".join(
    f"  - {{name: L{n}, enabled: true, apps: [confluence], addresses: [52.{n}.0.0/16]}}\n"
    for n in range(3)
)


def _entries(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text("utf-8").splitlines() if line]


def _intents(journal: Path) -> list[dict[str, Any]]:
    return [e for e in _entries(journal) if e.get("event") == "intent"]


def _policy_names(url: str) -> list[str]:
    names: list[str] = []
    next_url: str | None = url
    while next_url:
        page = httpx.get(next_url).json()
        names += [p["attributes"]["name"] for p in page["data"]]
        next_url = page["links"]["next"]
    return names


@pytest.mark.parametrize("kill_after", [1, 3, 5])
def test_sigkill_mid_run_then_rerun_every_write_the_server_saw_is_journalled(
    tmp_path: Path, kill_after: int
) -> None:
    """Killed just after its Nth intent (the request in flight), rerun until converged: the
    server's write log is covered by intent lines, and the killed request has no outcome."""
    org = f"org-killed-{kill_after}"
    path = policy_file(
        tmp_path,
        f"org: {{id: {org}}}\nipAllowlists:\n{_LISTS}"
        "mcp: {domains: ['https://mcp.example.com/**']}\n",
    )
    journal = tmp_path / "journal.jsonl"
    env = {**os.environ, "ATLASSIAN_ADMIN_API_KEY": "unused", "NO_COLOR": "1"}
    env.pop("ROVO_RECONCILE_DEBUG", None)
    state = tmp_path / "emulator.db"

    def apply(url: str) -> list[str]:
        command = [sys.executable, "-m", "rovo_reconcile", "apply", str(path), "--yes"]
        return [*command, "--api-url", url, "--journal", str(journal)]

    # A slow server, so the kill lands while the Nth write is in flight (big pages: the
    # reads before it are few, and each waits as long as a write).
    slow_server = ("--latency-ms", "250", "--settle-ms", "0", "--page-size", "50")
    with start_emulator(tmp_path, *slow_server, state=state) as slow:
        killed = subprocess.Popen(
            apply(slow.url),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while len(_intents(journal)) < kill_after and killed.poll() is None:
            assert time.monotonic() < deadline, "apply never reached the kill point"
            time.sleep(0.005)
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        time.sleep(0.5)  # let the server finish the write that was in flight
    killed_run = {e["request"] for e in _intents(journal)}
    assert len(killed_run) >= kill_after
    answered = {e["request"] for e in _entries(journal) if e.get("event") == "outcome"}
    assert killed_run - answered, "the write in flight when killed has an intent, no outcome"

    # The same state behind a fast server: rerun until converged.
    with start_emulator(tmp_path, "--settle-ms", "0", state=state) as fast:
        for _ in range(4):
            rerun = subprocess.run(
                apply(fast.url), cwd=tmp_path, env=env, capture_output=True, timeout=120
            )
            if rerun.returncode == EXIT_OK:
                break
        assert rerun.returncode == EXIT_OK, rerun.stdout.decode() + rerun.stderr.decode()
        seen = httpx.get(f"{fast.url}/_emulator/writes").json()["writes"]
        names = _policy_names(f"{fast.url}/admin/control/v1/orgs/{org}/policies")
    served = Counter((w["method"], w["path"]) for w in seen if f"/orgs/{org}/" in w["path"])
    journalled = Counter((e["method"], e["path"]) for e in _intents(journal))
    assert served, "the emulator saw writes"
    unaccounted = served - journalled
    assert not unaccounted, f"writes the server saw with no intent line: {unaccounted}"
    assert len(names) == len(set(names)), names  # and no duplicate on the way
