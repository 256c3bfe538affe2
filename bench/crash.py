"""Crash bench: SIGKILL `apply` at K points of a multi-list change, rerun to convergence.

Each kill point gets an org of its own, seeded with six allowlists and three MCP domains,
then `rovo-reconcile apply` (a subprocess, `--api-url`) moves it to a policy that changes,
creates and deletes allowlists (one narrowing is safe only after a create: the order of the
writes is what keeps the `mustAllow` address in), swaps MCP domains and flips a setting.
The run is SIGKILLed just after its Nth write intent reaches the journal (the request then
in flight, the server slow: `--latency-ms`), and applied again, against a fast server on the
same state, until it exits 0 (at most `--max-reruns`); `plan --detailed-exitcode` then
checks independently that nothing is left to change.

Both emulators (`python -m rovo_reconcile emulator serve --port 0`) share one SQLite file and
sit behind a small proxy of this script's own, which forwards one write at a time and, after
each, reads the emulator's state file: a workspace whose enabled allowlists, taken together,
do not admit the `mustAllow` address is a lockout. Kill points are spread evenly over the
writes a clean run makes (measured first, on an org of its own: the `none` row).

Columns: kill point (after intent N of W); converged on the first rerun; reruns needed;
duplicates (allowlists sharing a name at the end); lockouts (writes after which a workspace
shut the `mustAllow` address out); writes the server logged (`/_emulator/writes`) with no
intent line in any journal; intents without an outcome, in the killed run (the request in
flight: expected) and in the reruns (must be 0). Exits 1 when a must-be-zero column is not 0
or a kill point did not converge.

Usage: python bench/crash.py [--kills K] [--latency-ms MS] [--max-reruns N] [--timeout S]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rovo_reconcile.emulator.inspect import locked_out

MUST_ALLOW = "52.14.1.1"
HEADER = "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n"
READY = re.compile(r"rovo-reconcile emulator listening on (http://\S+) \(state (.+)\)")
WORKSPACE_SEARCH = re.compile(r"/admin/v2/orgs/[^/]+/workspaces/?$")
ORG_IN_PATH = re.compile(r"/orgs/([^/]+)/")


def before(org: str) -> str:
    return f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira, confluence], addresses: [52.14.0.0/16, 18.0.0.0/8]}}
  - {{name: VPN, enabled: true, apps: [jira], addresses: [10.0.0.0/8]}}
  - {{name: Old, enabled: true, apps: [confluence], addresses: [52.14.0.0/16, 3.3.3.0/24]}}
  - {{name: Legacy, enabled: true, apps: [rovo], addresses: [52.14.0.0/16, 6.6.6.0/24]}}
  - {{name: Partner, enabled: true, apps: [jira], addresses: [9.9.9.0/24]}}
  - {{name: Spare, enabled: false, apps: [compass], addresses: [8.8.8.0/24]}}
mcp:
  domains: ['https://a.example.com/**', 'https://b.example.com/**', 'https://d.example.com/**']
  allowAtlassianSupportedDomains: false
guards: {{mustAllow: [{MUST_ALLOW}]}}
"""


def after(org: str) -> str:
    return f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira, confluence], addresses: [19.0.0.0/8]}}
  - {{name: Gateway, enabled: true, apps: [jira, confluence, rovo], addresses: [52.14.1.0/24]}}
  - {{name: VPN, enabled: true, apps: [jira], addresses: [10.0.0.0/8, 11.0.0.0/8]}}
  - {{name: Legacy, enabled: true, apps: [rovo], addresses: [6.6.6.0/24]}}
  - {{name: Partner, enabled: true, apps: [jira], addresses: [9.9.10.0/24]}}
  - {{name: Lab, enabled: true, apps: [jira], addresses: [52.14.0.0/16, 4.4.4.0/24]}}
  - {{name: Branch, enabled: false, apps: [confluence], addresses: [5.5.5.0/24]}}
  - {{name: Depot, enabled: false, apps: [compass], addresses: [7.7.0.0/16]}}
mcp:
  domains: ['https://a.example.com/**', 'https://c.example.com/**', 'https://e.example.com/**',
            'https://f.example.com/**']
  allowAtlassianSupportedDomains: true
guards: {{mustAllow: [{MUST_ALLOW}], maxDeletePercent: 100}}
"""


# ------------------------------------------------------------------ emulator and proxy


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[str]


@contextmanager
def emulator(state: Path, *args: str) -> Iterator[Emulator]:
    command = [sys.executable, "-m", "rovo_reconcile", "emulator", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--state", str(state), "--settle-ms", "0", "--page-size", "50", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        match = READY.fullmatch(process.stdout.readline().rstrip("\n")) if ready else None
        if match is None:
            raise RuntimeError("the emulator did not start")
        yield Emulator(match.group(1), process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def is_write(method: str, path: str) -> bool:
    return method not in ("GET", "HEAD") and not (
        method == "POST" and WORKSPACE_SEARCH.search(path)
    )


def duplicates(db: Path, org: str) -> int:
    with sqlite3.connect(db, timeout=30) as con:
        (n,) = con.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT name) FROM policies WHERE org_id = ?", (org,)
        ).fetchone()
    con.close()
    return int(n)


@dataclass
class Watch:
    """What the proxy saw: writes in flight, and lockouts after writes, by org."""

    db: Path
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    lockouts: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    """Writes after which the state was checked, by org."""

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no forwarded write is still on its way (after a kill)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.in_flight == 0:
                    return
            time.sleep(0.01)
        raise RuntimeError("a forwarded write never finished")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client was SIGKILLed mid-request: that is the point


def _handler(upstream: str, watch: Watch) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            write = is_write(self.command, path)
            if write:
                with watch.lock:
                    watch.in_flight += 1
                watch.write_lock.acquire()  # one write at a time: a check after each
            try:
                status, headers, data = self._forward(body)
                if write:
                    match = ORG_IN_PATH.search(path)
                    if match:
                        locked = locked_out(watch.db, match.group(1), MUST_ALLOW)
                        with watch.lock:
                            watch.checked[match.group(1)] += 1
                            watch.lockouts[match.group(1)] += bool(locked)
            finally:
                if write:
                    watch.write_lock.release()
                    with watch.lock:
                        watch.in_flight -= 1
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=60)
            try:
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "content-length")
                }
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            finally:
                connection.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def proxy(upstream: str, watch: Watch) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _handler(upstream, watch))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ------------------------------------------------------------------ the CLI and its journal

ENV = {
    **{k: v for k, v in os.environ.items() if k != "ROVO_RECONCILE_DEBUG"},
    "ATLASSIAN_ADMIN_API_KEY": "unused",
    "NO_COLOR": "1",
}


def cli(*args: str, url: str, timeout: float) -> list[str]:
    command = [sys.executable, "-m", "rovo_reconcile", *args, "--api-url", url]
    return [*command, "--timeout", str(timeout), "--now", "2026-11-26"]


def entries(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    lines = journal.read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]


def intents(journal: Path) -> list[dict[str, Any]]:
    return [e for e in entries(journal) if e.get("event") == "intent"]


def orphans(journal: Path) -> tuple[int, int]:
    """Intents without an outcome: (in the first run of the journal, in the later runs)."""
    lines = entries(journal)
    answered = {e["request"] for e in lines if e.get("event") == "outcome"}
    runs = [e["request"].rsplit("-", 1)[0] for e in lines if e.get("event") == "intent"]
    first = runs[0] if runs else None
    open_ = [
        e["request"] for e in lines if e.get("event") == "intent" and e["request"] not in answered
    ]
    killed = sum(r.rsplit("-", 1)[0] == first for r in open_)
    return killed, len(open_) - killed


def served_writes(url: str) -> list[dict[str, Any]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", "/_emulator/writes")
        return list(json.loads(connection.getresponse().read())["writes"])
    finally:
        connection.close()


def unjournalled(writes: list[dict[str, Any]], journals: list[Path], org: str) -> int:
    """Writes the server logged for `org` that no intent line of `journals` accounts for."""
    needle = f"/orgs/{org}/"
    served = Counter((w["method"], w["path"]) for w in writes if needle in w["path"])
    journalled = Counter(
        (e["method"], e["path"]) for j in journals for e in intents(j) if needle in e["path"]
    )
    return sum((served - journalled).values())


# ------------------------------------------------------------------ the bench


@dataclass
class Row:
    label: str
    killed: bool
    first_rerun: bool
    reruns: int
    converged: bool
    duplicates: int
    lockouts: int
    unjournalled: int
    open_killed: int
    open_reruns: int


def write_policy(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.yaml"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def kill_at(
    org: str, kill_after: int | None, tmp: Path, slow: str, fast: str, args: argparse.Namespace
) -> tuple[bool, int, bool]:
    """Apply `after(org)` against `slow`, SIGKILLed after intent `kill_after` (None: never),
    then rerun against `fast` until exit 0. (converged on the first rerun, reruns, converged)."""
    policy = write_policy(tmp / org / "after", after(org))
    journal = tmp / org / "journal.jsonl"
    apply = ["apply", str(policy), "--yes", "--force", "--journal", str(journal)]
    log = tmp / org / "killed.log"
    with log.open("wb") as output:
        killed = subprocess.Popen(
            cli(*apply, url=slow, timeout=args.timeout),
            cwd=tmp,
            env=ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    if kill_after is None:
        code = killed.wait(120)
        if code != 0:
            raise RuntimeError(f"the clean run exited {code}:\n{log.read_text('utf-8')}")
    else:
        deadline = time.monotonic() + 120
        while len(intents(journal)) < kill_after and killed.poll() is None:
            if time.monotonic() > deadline:
                killed.kill()
                raise RuntimeError(f"{org}: apply never reached intent {kill_after}")
            time.sleep(0.002)
        if killed.poll() is not None:  # it finished before the kill point: say so
            print(f"  {org}: apply ended (exit {killed.returncode}) before intent {kill_after}")
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
    reruns, first, converged = 0, False, kill_after is None
    while not converged and reruns < args.max_reruns:
        reruns += 1
        rerun = subprocess.run(
            cli(*apply, url=fast, timeout=args.timeout),
            cwd=tmp,
            env=ENV,
            capture_output=True,
            timeout=120,
        )
        converged = rerun.returncode == 0
        first = first or (converged and reruns == 1)
    if converged:  # an independent look: nothing left to change
        check = subprocess.run(
            cli("plan", str(policy), "--detailed-exitcode", url=fast, timeout=args.timeout),
            cwd=tmp,
            env=ENV,
            capture_output=True,
            timeout=120,
        )
        converged = check.returncode == 0
        first = first and converged
    return first, reruns, converged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=12, help="kill points (default 12)")
    parser.add_argument("--latency-ms", type=int, default=50, help="the slow server's latency")
    parser.add_argument("--max-reruns", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=20.0, help="apply --timeout")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="rovo-crash-") as name:
        tmp = Path(name)
        state = tmp / "emulator.db"
        watch = Watch(state)
        orgs = ["org-crash-clean", *(f"org-crash-{k + 1:02d}" for k in range(args.kills))]
        for org in orgs:
            write_policy(tmp / "seed" / org, before(org))
        seed_journal = tmp / "seed.jsonl"
        with (
            emulator(state) as fast_emu,
            emulator(state, "--latency-ms", str(args.latency_ms)) as slow_emu,
            proxy(fast_emu.url, watch) as fast,
            proxy(slow_emu.url, watch) as slow,
        ):
            seed = subprocess.run(
                cli(
                    "apply",
                    str(tmp / "seed"),
                    "--yes",
                    "--journal",
                    str(seed_journal),
                    url=fast,
                    timeout=args.timeout,
                ),
                cwd=tmp,
                env=ENV,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if seed.returncode != 0:
                raise SystemExit(f"seeding failed ({seed.returncode}):\n{seed.stdout}{seed.stderr}")
            clean = orgs[0]
            kill_at(clean, None, tmp, slow, fast, args)
            total = len(intents(tmp / clean / "journal.jsonl"))
            points = sorted(
                {max(1, round((i + 1) * total / args.kills)) for i in range(args.kills)}
            )
            cases: list[tuple[str, str, int | None]] = [
                (clean, f"none (clean, {total} writes)", None)
            ]
            cases += [(orgs[i + 1], f"after intent {n}/{total}", n) for i, n in enumerate(points)]
            for org, label, point in cases:
                first, reruns, converged = kill_at(org, point, tmp, slow, fast, args)
                watch.settle()
                journal = tmp / org / "journal.jsonl"
                killed_open, rerun_open = orphans(journal) if point is not None else (0, 0)
                if point is None:
                    rerun_open = sum(orphans(journal))
                rows.append(
                    Row(
                        label,
                        point is not None,
                        first,
                        reruns,
                        converged,
                        duplicates(state, org),
                        watch.lockouts[org],
                        unjournalled(served_writes(fast), [seed_journal, journal], org),
                        killed_open,
                        rerun_open,
                    )
                )
                print(f"  ... {label}: {time.monotonic() - started:.1f} s", file=sys.stderr)
            logged = len(served_writes(fast))
    checked = sum(watch.checked.values())
    elapsed = time.monotonic() - started
    print(
        f"crash bench: {len(rows) - 1} kill points, slow server {args.latency_ms} ms a request, "
        f"up to {args.max_reruns} reruns; {elapsed:.1f} s"
    )
    header = (
        "kill point",
        "1st rerun converged",
        "reruns",
        "duplicates",
        "lockouts",
        "unjournalled writes",
        "open intents (killed/reruns)",
    )
    table = [
        (
            r.label,
            ("yes" if r.first_rerun else "no") if r.killed else "-",
            str(r.reruns) if r.converged else f"{r.reruns} (not converged)",
            str(r.duplicates),
            str(r.lockouts),
            str(r.unjournalled),
            f"{r.open_killed}/{r.open_reruns}",
        )
        for r in rows
    ]
    killed = [r for r in rows if r.killed]
    table.append(
        (
            "total",
            f"{sum(r.first_rerun for r in killed)}/{len(killed)}",
            f"{sum(r.converged for r in rows)}/{len(rows)} converged",
            str(sum(r.duplicates for r in rows)),
            str(sum(r.lockouts for r in rows)),
            str(sum(r.unjournalled for r in rows)),
            f"{sum(r.open_killed for r in rows)}/{sum(r.open_reruns for r in rows)}",
        )
    )
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"  lockout checks: after {checked} writes, of {logged} in the server's write log")
    bad = checked != logged or any(
        r.duplicates or r.lockouts or r.unjournalled or r.open_reruns or not r.converged
        for r in rows
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
