"""Full live reads of many orgs against the emulator with injected latency.

Starts `rovo-reconcile emulator serve --latency-ms 50` on loopback, seeds each
org with three allowlists and five MCP domains, then reads every org through
the real client (atlassian target) and compares the wall time with the floor:
requests x latency / concurrency.

Usage: python bench/read_orgs.py [ORGS] [LATENCY_MS] [CONCURRENCY]
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from rovo_reconcile.live_state import read_live
from rovo_reconcile.targets import resolve_target

_READY = re.compile(r"listening on (http://\S+)")


def seed(url: str, org: str) -> None:
    base = f"{url}/admin/control/v1/orgs/{org}"
    with httpx.Client(timeout=30) as http:
        workspaces = http.post(f"{url}/admin/v2/orgs/{org}/workspaces?cursor=", json={}).json()[
            "data"
        ]
        ids = [w["id"] for w in workspaces]
        for index, name in enumerate(("Office", "VPN", "CI")):
            body = {
                "data": {
                    "type": "policy",
                    "attributes": {
                        "type": "ip-allowlist",
                        "name": name,
                        "status": "enabled",
                        "rule": {
                            "in": [f"52.{index}.{n}.0/24" for n in range(20)],
                            "allowMobileBypass": False,
                        },
                        "resources": [{"id": i} for i in ids],
                    },
                }
            }
            http.post(f"{base}/policies", json=body).raise_for_status()
        for host in "abcde":
            body = {
                "data": {
                    "type": "rovo-mcp-domain",
                    "attributes": {"pattern": f"https://{host}.example.com/**"},
                }
            }
            http.post(f"{base}/rovo-mcp/domains", json=body).raise_for_status()


def main() -> None:
    orgs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    latency = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "rovo_reconcile",
            "emulator",
            "serve",
            "--port",
            "0",
            "--state",
            str(Path(tmp) / "bench.db"),
            "--settle-ms",
            "0",
        ]
        seeder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert seeder.stdout is not None
        url = _READY.search(seeder.stdout.readline()).group(1)  # type: ignore[union-attr]
        org_ids = [f"bench-org-{n:03d}" for n in range(orgs)]
        for org in org_ids:
            seed(url, org)
        seeder.terminate()
        seeder.wait()
        server = subprocess.Popen(
            [*command, "--latency-ms", str(latency)], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        url = _READY.search(server.stdout.readline()).group(1)  # type: ignore[union-attr]
        try:
            os.environ["ATLASSIAN_ADMIN_API_KEY"] = "bench-key"
            target = resolve_target(None, url, None)
            start = time.perf_counter()
            result = asyncio.run(read_live(target, org_ids, concurrency=concurrency))
            wall = time.perf_counter() - start
            for org in org_ids:
                result.org(org)  # raises if any read failed
        finally:
            server.terminate()
            server.wait()
    per_org = result.requests / orgs
    floor = result.requests * latency / 1000 / concurrency
    print(
        f"orgs read:            {orgs} (page size 2, {latency} ms latency, concurrency {concurrency})"
    )
    print(f"requests per org:     {per_org:.1f}")
    print(f"requests in total:    {result.requests}")
    print(f"wall time:            {wall:.2f} s")
    print(f"floor (req x lat / c): {floor:.2f} s")
    print(f"wall / floor:         {wall / floor:.2f}x")


if __name__ == "__main__":
    main()
