"""`emulator serve` without --state serves the sandbox target's file, so a change made through
it (a colleague in the admin UI) lands in the org `show` and `drift` read. The changes are
made as the README shows them: add a domain, and edit an allowlist by GETting it, changing
the rule and PUTting the document back."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from .conftest import CliRunner

ORG = "e2b8f4a6-0c1d-4f93-8b7e-5a6d3c9e1f20"
POLICY = f"""\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org: {{id: {ORG}}}
mcp:
  domains: [https://app.example-corp.com/**]
ipAllowlists:
  - name: Head office
    enabled: true
    apps: [jira, confluence]
    addresses: [91.208.44.0/24]
"""


def test_serve_without_state_is_the_sandbox_that_show_and_drift_read(
    cli: CliRunner, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    assert cli("apply", str(policy), "--yes").code == 0  # the default sandbox, in tmp_path
    command = [sys.executable, "-m", "rovo_reconcile", "emulator", "serve", "--port", "0"]
    command += ["--page-size", "100", "--settle-ms", "0"]
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 20)
        assert ready, "the emulator printed nothing"
        line = server.stdout.readline()
        assert line.endswith(f"(state {Path('.rovo-reconcile') / 'sandbox.db'})\n"), line
        url = line.split(" listening on ")[1].split(" ")[0]
        api = f"{url}/admin/control/v1/orgs/{ORG}"
        with httpx.Client(timeout=10) as http:
            http.post(
                f"{api}/rovo-mcp/domains",
                json={
                    "data": {
                        "type": "rovo-mcp-domain",
                        "attributes": {"pattern": "https://pilot.example.com/**"},
                    }
                },
            ).raise_for_status()
            listing = http.get(f"{api}/policies", params={"type": "ip-allowlist"}).json()
            (office,) = [p for p in listing["data"] if p["attributes"]["name"] == "Head office"]
            document = http.get(f"{api}/policies/{office['id']}").json()
            document["data"]["attributes"]["rule"]["in"].append("198.51.100.77")
            http.put(f"{api}/policies/{office['id']}", json=document).raise_for_status()
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
    shown = cli("show", "--org", ORG)
    assert shown.code == 0, shown.stderr
    assert "https://pilot.example.com/**" in shown.stdout
    assert "198.51.100.77/32" in shown.stdout
    drift = cli("drift", str(policy))
    assert drift.code == 2, drift.stdout + drift.stderr
    assert "live has a domain the policy does not: https://pilot.example.com/**" in drift.stdout
    assert "has addresses the policy does not: 198.51.100.77/32" in drift.stdout
